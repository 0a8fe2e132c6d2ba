"""The tagger: word + character features -> BiLSTM (any cell: `--model gru`; or a Transformer
encoder, `--model transformer`) -> per-token softmax or a linear-chain CRF.

    word w_t ──> embedding (B, T, E_w) ─┐
    chars of w_t ──> char BiLSTM / CNN ─┴─ concat (B, T, E_w + F) ─> dropout
        ─> word BiLSTM (B, T, 2H) ─> dropout ─> linear (B, T, K) = emission scores
        ─> softmax per token (cross-entropy) | CRF over the sentence (Lample et al. 2016)

The character features give every word, seen or not, a representation built from its spelling
(capitals, suffixes, digits): Lample et al. 2016 (char BiLSTM, final states of both directions)
and Ma & Hovy 2016 (char CNN, max-pooled over positions).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.errors import RnnlabError
from rnnlab.nn.crf import CRF, Constraints, scheme_constraints
from rnnlab.nn.factory import make_recurrent
from rnnlab.nn.positions import make_positions
from rnnlab.nn.recurrent import LSTM
from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.encode import Batch, TagVocab
from rnnlab.tasks.transformer_options import make_transformer_encoder

MAX_WORDS = 1024  # learned positions of the transformer tagger


class CharLSTM(nn.Module):
    """A word's characters -> [last forward state; last backward state] (N, 2 * hidden)."""

    def __init__(self, num_chars: int, embedding_size: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.lstm = LSTM(embedding_size, hidden, bidirectional=True, batch_first=True)
        self.output_size = 2 * hidden

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        # chars (N, C), lengths (N,) all >= 1
        _, (h_n, _) = self.lstm(self.embedding(chars), lengths=lengths)  # h_n (2, N, hidden)
        return torch.cat([h_n[0], h_n[1]], dim=1)  # (N, 2 * hidden)


class CharCNN(nn.Module):
    """A word's characters -> max over positions of `filters` convolutions (N, filters)."""

    def __init__(self, num_chars: int, embedding_size: int, filters: int, kernel: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.conv = nn.Conv1d(embedding_size, filters, kernel, padding=kernel // 2)
        self.output_size = filters

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        x = self.embedding(chars).transpose(1, 2)  # (N, E_c, C)
        h = self.conv(x)[:, :, : chars.shape[1]]  # (N, filters, C); even kernels add one
        inside = torch.arange(chars.shape[1], device=chars.device)[None, :] < lengths[:, None]
        h = h.masked_fill(~inside.unsqueeze(1), float("-inf"))  # padding never wins the max
        return h.max(dim=2).values  # (N, filters)


class Tagger(nn.Module):
    def __init__(self, config: TagConfig, num_words: int, num_chars: int, num_tags: int, *,
                 constraints: Constraints | None = None, pretrained: Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(num_words, config.word_embedding_size, padding_idx=0)
        if pretrained is not None:
            self.embedding.weight.data.copy_(pretrained)
            self.embedding.weight.requires_grad_(not config.freeze_embeddings)
        self.chars: CharLSTM | CharCNN | None = None
        if config.char_features == "lstm":
            self.chars = CharLSTM(num_chars, config.char_embedding_size, config.char_hidden)
        elif config.char_features == "cnn":
            self.chars = CharCNN(num_chars, config.char_embedding_size, config.char_hidden,
                                 config.char_kernel)
        features = config.word_embedding_size + (self.chars.output_size if self.chars else 0)
        self.dropout = nn.Dropout(config.dropout)
        self.input: nn.Linear | None = None
        self.decay_matrices_only = config.model == "transformer"  # see training.optim
        if config.model == "transformer":
            # the features are mapped to the width, positions added, then encoded
            self.input = nn.Linear(features, config.hidden)
            self.positions = make_positions(config.positions, config.hidden, MAX_WORDS)
            self.encoder = make_transformer_encoder(config, config.hidden, config.layers,
                                                    config.dropout)
            states = config.hidden
        else:
            self.encoder = make_recurrent(config.cell, features, config.hidden, config.layers,
                                          dropout=config.dropout, bidirectional=True,
                                          batch_first=True)
            states = 2 * config.hidden
        self.output = nn.Linear(states, num_tags)
        self.crf = CRF(num_tags, constraints) if config.crf else None

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def emissions(self, batch: Batch) -> Tensor:
        """Tag scores of every word, (B, T, K)."""
        x = self.embedding(batch.words)  # (B, T, E_w)
        if self.chars is not None:
            real = batch.char_lengths > 0  # (B, T): the real words
            per_word = self.chars(batch.chars[real], batch.char_lengths[real])  # (N, F)
            char_features = x.new_zeros(*batch.words.shape, per_word.shape[1])  # (B, T, F)
            char_features[real] = per_word
            x = torch.cat([x, char_features], dim=2)  # (B, T, E_w + F)
        x = self.dropout(x)
        if self.input is None:
            out, _ = self.encoder(x, lengths=batch.lengths.cpu())  # (B, T, 2H)
        else:
            steps = x.shape[1]
            if steps > MAX_WORDS:
                raise RnnlabError(f"a sentence of {steps} words is longer than the "
                                  f"transformer tagger reads ({MAX_WORDS})")
            h = self.input(x) + self.positions(steps)  # (B, T, H)
            out, _ = self.encoder(h, batch.lengths.to(h.device))  # (B, T, H)
        return self.output(self.dropout(out))  # (B, T, K)

    def loss(self, batch: Batch) -> Tensor:
        """Mean negative log-likelihood per word: of each gold tag (softmax) or of each gold
        tag sequence divided by its words (CRF), so the two use the same learning rates."""
        scores = self.emissions(batch)
        mask = batch.mask
        if self.crf is None:
            return F.cross_entropy(scores[mask], batch.tags[mask])
        return -self.crf.log_likelihood(scores, batch.tags, mask).sum() / mask.sum()

    @torch.no_grad()
    def decode(self, batch: Batch) -> list[list[int]]:
        """The predicted tag ids of each sentence (Viterbi for the CRF)."""
        scores = self.emissions(batch)
        if self.crf is not None:
            return self.crf.decode(scores, batch.mask)
        best = scores.argmax(dim=2).tolist()  # (B, T)
        return [row[:n] for row, n in zip(best, batch.lengths.tolist(), strict=True)]


def build_model(config: TagConfig, vocab: TagVocab, scheme: str,
                pretrained: Tensor | None = None) -> Tagger:
    constraints = None
    if config.crf and config.constrained and scheme != "none":
        constraints = scheme_constraints(vocab.tags, scheme)
    return Tagger(config, len(vocab.words), len(vocab.chars), len(vocab.tags),
                  constraints=constraints, pretrained=pretrained)
