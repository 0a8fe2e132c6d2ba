"""The graphs of the document classifiers: the hierarchical attention network (HAN) and NBSVM.

NBSVM reads a padded batch of its n-gram feature ids with their lengths, as the sentence
classifiers do, so `graphs.ClassifierGraph` exports it unchanged. HAN reads documents:

    tokens (B, N, W), sentence_counts (B,), word_lengths (B, N)
        -> probabilities (B, C), sentence_attention (B, N), word_attention (B, N, W)

`HierarchicalAttention.forward` gathers the batch's real sentences with a boolean selection
(its size depends on the data, which a graph cannot hold); `HANGraph` instead runs the word
encoder over all B*N sentence slots, a padding slot read as one <pad> word, and zeroes what the
padding slots give (their sentence vectors and word weights), which is what `forward` leaves
there. A real sentence is read alone either way, so its vector is the same.

Shapes: B documents, N sentences (the most of the batch), W words (the longest sentence),
S = D*H state size, C classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.export.graphs import GraphSpec, _ids
from rnnlab.tasks.classify.model import length_mask

DOCUMENTS, SENTENCES, WORDS = 3, 4, 6  # example sizes, all different and above 1


class HANGraph(nn.Module):
    """HAN's forward over every sentence slot (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, sentence_counts: Tensor,
                word_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        model = self.model
        batch, sentences, words = tokens.shape
        real = length_mask(sentence_counts, sentences)  # (B, N)
        lengths = word_lengths.reshape(-1).clamp(min=1)  # (B*N,): a padding slot reads 1 word
        x = model.embed(tokens.reshape(batch * sentences, words))  # (B*N, W, E)
        h, _ = model.word_rnn(x, lengths=lengths)  # (B*N, W, S)
        s, word_weights = model.word_attention(h, lengths)  # (B*N, S), (B*N, W)
        keep = real.reshape(-1, 1).to(s.dtype)  # (B*N, 1)
        sentence_vectors = (s * keep).reshape(batch, sentences, -1)  # (B, N, S)
        out, _ = model.sentence_rnn(sentence_vectors, lengths=sentence_counts)  # (B, N, S)
        v, sentence_weights = model.sentence_attention(out, sentence_counts)  # (B, S), (B, N)
        word_weights = (word_weights * keep).reshape(batch, sentences, words)  # (B, N, W)
        return torch.softmax(model.head(v), dim=-1), sentence_weights, word_weights


def han_graphs(model: nn.Module, vocab_size: int) -> list[GraphSpec]:
    counts = torch.tensor([SENTENCES, 1, SENTENCES - 1])  # one full, one short, one between
    word_lengths = torch.randint(1, WORDS + 1, (DOCUMENTS, SENTENCES))
    word_lengths[0, 0] = WORDS
    word_lengths[torch.arange(SENTENCES)[None, :] >= counts[:, None]] = 0  # padding sentences
    tokens = _ids(vocab_size, DOCUMENTS, SENTENCES, WORDS)
    tokens[torch.arange(WORDS)[None, None, :] >= word_lengths[..., None]] = 0
    return [GraphSpec("classifier", HANGraph(model), (tokens, counts, word_lengths),
                      ["tokens", "sentence_counts", "word_lengths"],
                      ["probabilities", "sentence_attention", "word_attention"],
                      {"tokens": {0: "batch", 1: "sentences", 2: "words"},
                       "sentence_counts": {0: "batch"},
                       "word_lengths": {0: "batch", 1: "sentences"}})]
