"""Sentence classifiers: a recurrent or Transformer encoder with pooling, and Kim's (2014) CNN
baseline.

All take a padded batch of token ids with its lengths and give class logits, so the
Trainer, `predict` and `eval` treat them alike; both return their own loss.

Shape legend: B batch, T time steps (the longest sentence of the batch), E embedding size,
H hidden units per direction, D directions, S = D*H state size, C classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.factory import make_recurrent
from rnnlab.nn.positions import make_positions
from rnnlab.nn.structured_attention import StructuredSelfAttention, attention_penalty
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.transformer_options import make_transformer_encoder


def length_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) True at real tokens, False at padding."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def mean_pool(out: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, S) -> (B, S): the mean over each sentence's own tokens."""
    mask = length_mask(lengths, out.shape[1]).unsqueeze(-1)  # (B, T, 1)
    return (out * mask).sum(1) / lengths.unsqueeze(-1).to(out.dtype)


def max_pool(out: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, S) -> (B, S): the maximum over each sentence's own tokens (padding never wins,
    even where every real value is negative)."""
    mask = length_mask(lengths, out.shape[1]).unsqueeze(-1)  # (B, T, 1)
    return out.masked_fill(~mask, float("-inf")).amax(1)


def last_pool(out: Tensor, lengths: Tensor, bidirectional: bool) -> Tensor:
    """(B, T, S) -> (B, S): each direction's state after reading the whole sentence.

    The forward direction ends at the sentence's own last token (index length - 1, not T - 1:
    padding is not read); the backward direction ends at the first token.
    """
    rows = torch.arange(out.shape[0], device=out.device)
    last = out[rows, lengths - 1]  # (B, S)
    if not bidirectional:
        return last
    half = out.shape[-1] // 2
    return torch.cat([last[:, :half], out[:, 0, half:]], dim=-1)  # (B, S)


class AttentionPooling(nn.Module):
    """Additive self-attention pooling (Bahdanau et al. 2015's scorer with a learned query, as
    in Yang et al. 2016's word attention):

        u_t = tanh(W h_t + b),  e_t = v^T u_t,  a = softmax(e) over real tokens,  s = sum a_t h_t

    Padding gets -inf before the softmax, so its weight is exactly 0 and the weights of a
    sentence sum to 1 over its own tokens.
    """

    def __init__(self, state_size: int, attention_size: int) -> None:
        super().__init__()
        self.project = nn.Linear(state_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)  # v

    def forward(self, out: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, S) -> pooled (B, S) and weights (B, T)."""
        real = length_mask(lengths, out.shape[1])  # (B, T)
        energy = out.new_full(real.shape, float("-inf"))  # (B, T)
        # only the real tokens are scored: a batch of mixed lengths is often half padding
        energy[real] = self.score(torch.tanh(self.project(out[real]))).squeeze(-1)
        weights = torch.softmax(energy, dim=-1)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1), out).squeeze(1)  # (B, S)
        return pooled, weights


def _head(size: int, mlp_hidden: int, classes: int, dropout: float) -> nn.Module:
    if not mlp_hidden:
        return nn.Linear(size, classes)
    return nn.Sequential(nn.Linear(size, mlp_hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(mlp_hidden, classes))


class _SentenceModel(nn.Module):
    """What both classifiers share: the embedding, the loss and the prediction."""

    def __init__(self, vocab_size: int, config: ClassifyConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=0)
        if config.embedding_init:
            with torch.no_grad():
                nn.init.uniform_(self.embedding.weight, -config.embedding_init,
                                 config.embedding_init)
                self.embedding.weight[0] = 0.0  # <pad> stays the zero vector
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, T) -> (B, T, E). While training, whole words are dropped (zero vectors) with
        probability `word_dropout`: the model cannot lean on a few sentiment words alone
        (Iyyer et al. 2015's word dropout)."""
        x = self.embedding(tokens)
        if self.training and self.config.word_dropout:
            kept = torch.rand(tokens.shape, device=tokens.device) >= self.config.word_dropout
            x = x * kept.unsqueeze(-1).to(x.dtype)
        return x

    def loss(self, tokens: Tensor, lengths: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy (nats per sentence) of the gold labels (B,)."""
        logits, _ = self(tokens, lengths)
        return F.cross_entropy(logits, labels)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class _PooledEncoder(_SentenceModel):
    """An encoder of the sentence into states (B, T, S), then pooling and the head.

    Subclasses define `encode(tokens, lengths) -> (states, lengths)`. `forward` also returns
    word weights (B, T) with attention pooling, and with structured pooling the mean of its
    hops (Lin et al. 2017 sec. 4.1 show the hops summed and normalised), else None.
    """

    bidirectional = False

    def _build_pooling(self, state: int, num_classes: int) -> None:
        c = self.config
        self.attention = (AttentionPooling(state, c.attention_size or state)
                          if c.pooling == "attention" else None)
        self.structured = (StructuredSelfAttention(state, c.attention_size or state, c.hops)
                           if c.pooling == "structured" else None)
        pooled = self.structured.output_size if self.structured else state
        self.head = _head(pooled, c.mlp_hidden, num_classes, c.dropout)

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _logits(self, tokens: Tensor, lengths: Tensor
                ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """logits (B, C), word weights (B, T) or None, the structured hops A (B, r, T) or None."""
        out, lengths = self.encode(tokens, lengths)  # (B, T, S)
        weights = hops = None
        pooling = self.config.pooling
        if pooling == "attention":
            pooled, weights = self.attention(out, lengths)  # (B, S), (B, T)
        elif pooling == "structured":
            pooled, hops = self.structured(out, lengths)  # (B, r*S), (B, r, T)
            weights = hops.mean(1)  # (B, T)
        elif pooling == "mean":
            pooled = mean_pool(out, lengths)
        elif pooling == "max":
            pooled = max_pool(out, lengths)
        elif pooling == "first":
            pooled = out[:, 0]  # the summary token's state
        else:
            pooled = last_pool(out, lengths, self.bidirectional)
        return self.head(self.dropout(pooled)), weights, hops  # (B, C)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """tokens (B, T), lengths (B,) on the CPU or the tokens' device -> logits (B, C)."""
        logits, weights, _ = self._logits(tokens, lengths)
        return logits, weights

    def loss(self, tokens: Tensor, lengths: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy (nats per sentence) of the gold labels (B,), plus, with structured
        pooling, `penalty` times the mean of ‖AAᵀ − I‖²_F (Lin et al. 2017 sec. 2.2)."""
        logits, _, hops = self._logits(tokens, lengths)
        loss = F.cross_entropy(logits, labels)
        if hops is not None and self.config.penalty:
            loss = loss + self.config.penalty * attention_penalty(hops).mean()
        return loss


class Classifier(_PooledEncoder):
    """embedding -> rnnlab RNN/LSTM/GRU over the padded batch with lengths -> pooling -> head."""

    def __init__(self, vocab_size: int, num_classes: int, config: ClassifyConfig) -> None:
        super().__init__(vocab_size, config)
        self.rnn = make_recurrent(
            config.cell, config.embedding_size, config.hidden, config.layers,
            dropout=config.dropout, bidirectional=config.bidirectional, batch_first=True,
            impl=config.impl,
        )
        self.bidirectional = config.bidirectional
        self._build_pooling(config.hidden * (2 if config.bidirectional else 1), num_classes)

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if self.rnn.looks_up_inputs(self.embedding.weight, tokens.shape[0]):  # no input product
            x_proj = F.embedding(tokens, self.rnn.input_table(self.embedding.weight))
            out, _ = self.rnn.forward_projected(x_proj, lengths=lengths.cpu())
        else:
            x = self.dropout(self.embed(tokens))  # (B, T, E)
            out, _ = self.rnn(x, lengths=lengths.cpu())  # (B, T, S), zero past each length
        return out, lengths.to(out.device)


class TransformerClassifier(_PooledEncoder):
    """embedding (+ a linear map to the width when --embedding-size differs from --hidden)
    + positions -> Transformer encoder over the real tokens (padding masked from `lengths`)
    -> pooling -> head. With `pooling="first"` a learned summary vector is read before the
    first word (BERT's [CLS]) and its output state is the sentence's vector."""

    decay_matrices_only = True

    def __init__(self, vocab_size: int, num_classes: int, config: ClassifyConfig) -> None:
        super().__init__(vocab_size, config)
        width = config.hidden
        self.summary = (nn.Parameter(torch.randn(width) * 0.02)
                        if config.pooling == "first" else None)
        self.input = (nn.Linear(config.embedding_size, width)
                      if config.embedding_size != width else None)
        self.positions = make_positions(config.positions, width, config.max_len + 1)
        self.encoder = make_transformer_encoder(config, width, config.layers, config.dropout)
        self._build_pooling(width, num_classes)

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.embed(tokens)  # (B, T, E)
        if self.input is not None:
            x = self.input(x)  # (B, T, H)
        lengths = lengths.to(x.device)
        if self.summary is not None:
            first = self.summary.expand(x.shape[0], 1, -1)  # (B, 1, H)
            x, lengths = torch.cat([first, x], dim=1), lengths + 1  # (B, 1 + T, H)
        x = self.dropout(x + self.positions(x.shape[1]))
        out, _ = self.encoder(x, lengths)  # (B, T', H)
        return out, lengths


class TextCNN(_SentenceModel):
    """Kim (2014): filters of several widths over the embeddings, ReLU, max over time,
    dropout, a linear layer. Only windows that start inside the sentence count (a sentence
    shorter than a filter is read once, padded with <pad>, whose embedding is zero)."""

    def __init__(self, vocab_size: int, num_classes: int, config: ClassifyConfig) -> None:
        super().__init__(vocab_size, config)
        self.widths = config.widths
        self.convs = nn.ModuleList(nn.Conv1d(config.embedding_size, config.filter_maps, w)
                                   for w in self.widths)
        self.head = nn.Linear(config.filter_maps * len(self.widths), num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, None]:
        """tokens (B, T) with T >= the widest filter -> logits (B, C)."""
        x = self.embed(tokens).transpose(1, 2)  # (B, E, T)
        lengths = lengths.to(tokens.device)
        features = []
        for width, conv in zip(self.widths, self.convs, strict=True):
            maps = F.relu(conv(x))  # (B, K, T - w + 1)
            last_start = (lengths - width).clamp(min=0)  # (B,)
            valid = torch.arange(maps.shape[-1], device=maps.device)[None, :] <= last_start[:, None]
            features.append(maps.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(-1))
        return self.head(self.dropout(torch.cat(features, dim=-1))), None  # (B, C)


def build_model(config: ClassifyConfig, vocab_size: int, num_classes: int) -> nn.Module:
    from rnnlab.errors import RnnlabError

    if config.model == "han":
        from rnnlab.tasks.classify.han import HierarchicalAttention

        return HierarchicalAttention(vocab_size, num_classes, config)
    if config.model == "nbsvm":
        from rnnlab.tasks.classify.nbsvm import NBSVM

        return NBSVM(vocab_size, num_classes, config)
    cls = {"cnn": TextCNN, "transformer": TransformerClassifier}.get(config.model, Classifier)
    if cls is TransformerClassifier and config.hidden % config.heads:
        raise RnnlabError(f"--hidden ({config.hidden}) must be divisible by --heads "
                          f"({config.heads})")
    return cls(vocab_size, num_classes, config)


def min_length(config: ClassifyConfig) -> int:
    """The shortest padded batch a model can read (a CNN needs its widest filter)."""
    return max(config.widths) if config.model == "cnn" else 1
