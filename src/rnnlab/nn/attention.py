"""Attention over encoder states: additive (Bahdanau), dot / general / concat (Luong), local-p.

One interface for every kind, so a decoder can swap them by name:

    context, weights = attention(query, memory, mask, keys=attention.project_keys(memory))

Shapes: query (B, H) is the decoder state that asks; memory (B, S, H2) holds the encoder's
outputs h̄_s (keys and values are the same vectors, as in both papers); mask (B, S) is True at
real source positions; context (B, H2) = Σ_s a_s h̄_s; weights (B, S) = a.

The key side of every score (U_a h̄_s, W_a h̄_s) does not change while a sentence is decoded,
so `project_keys` computes it once per batch and each decoder step passes it back in; without
it the decoder would redo a (B, S, H2) x (H2, A) product at every target position.

Padded positions get a score of -inf before the softmax (`masked_fill`), so their weight is
exactly 0 and they never change the context, however long the padding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SCORES = ("bahdanau", "dot", "general", "concat")


class Attention(nn.Module):
    """Global attention: a = softmax(score(h_t, h̄_s)) over the real source positions.

    Subclasses define `score(query, keys) -> (B, S)` and, where the key side has weights of its
    own, `project_keys(memory)`. With `local=True` the weights follow Luong et al. (2015) sec.
    3.2 "local-p" (see `_local_weights`).
    """

    def __init__(self, query_size: int, memory_size: int, *, local: bool = False,
                 window: int = 10) -> None:
        super().__init__()
        self.query_size, self.memory_size = query_size, memory_size
        self.local, self.window = local, window
        if local:
            if window < 1:
                raise ValueError(f"the local window half-width D must be >= 1, got {window}")
            # Luong eq. 9: p_t = S * sigmoid(v_p^T tanh(W_p h_t))
            self.position = nn.Sequential(nn.Linear(query_size, query_size, bias=False),
                                          nn.Tanh(), nn.Linear(query_size, 1, bias=False))

    def project_keys(self, memory: Tensor) -> Tensor:
        """The key side of the score, once per batch (identity unless the score has weights)."""
        return memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor,
                keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """query (B, H), memory (B, S, H2), mask (B, S) bool -> context (B, H2), weights (B, S)."""
        keys = self.project_keys(memory) if keys is None else keys
        weights = self.align(query, keys, mask)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, H2)
        return context, weights

    def align(self, query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
        """The weights alone, (B, S). A decoder that only ever uses linear maps of the context,
        W c = sum_s a_s (W h̄_s), can project the memory once and skip the context itself."""
        scores = self.score(query, keys)  # (B, S)
        if self.local:
            return self._local_weights(query, scores, mask)
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)

    def _local_weights(self, query: Tensor, scores: Tensor, mask: Tensor) -> Tensor:
        """Luong et al. 2015 sec. 3.2, local-p.

        p_t = (S - 1) sigmoid(v_p^T tanh(W_p h_t)) (eq. 9) with S each sentence's own length;
        the paper writes S, we write S - 1 so that p_t always falls on a real position 0..S-1.
        The softmax runs over the window [p_t - D, p_t + D] only, then each weight is scaled by
        a Gaussian centred at p_t with sigma = D / 2 (eq. 10). As in the paper the scaled
        weights sum to at most 1, not to 1.
        """
        lengths = mask.sum(dim=1, keepdim=True).to(scores.dtype)  # (B, 1)
        center = (lengths - 1) * torch.sigmoid(self.position(query))  # (B, 1)
        positions = torch.arange(scores.shape[1], device=scores.device, dtype=scores.dtype)
        distance = positions[None, :] - center  # (B, S)
        inside = mask & (distance.abs() <= self.window)  # (B, S): never empty, since D >= 1
        align = torch.softmax(scores.masked_fill(~inside, float("-inf")), dim=-1)
        sigma = self.window / 2
        return align * torch.exp(-distance.square() / (2 * sigma**2))


class AdditiveAttention(Attention):
    """Bahdanau et al. 2015, sec. 3.1 and appendix A.1.2: e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j).

    `U_a h_j` does not depend on the decoder step: it is `project_keys`, computed once.
    """

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None,
                 **local: object) -> None:
        super().__init__(query_size, memory_size, **local)
        size = attention_size or query_size
        self.query_layer = nn.Linear(query_size, size, bias=False)  # W_a
        self.key_layer = nn.Linear(memory_size, size, bias=False)  # U_a
        self.energy = nn.Linear(size, 1, bias=False)  # v_a

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.key_layer(memory)  # (B, S, A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.query_layer(query).unsqueeze(1) + keys)  # (B, S, A)
        return self.energy(hidden).squeeze(-1)  # (B, S)


class ConcatAttention(AdditiveAttention):
    """Luong et al. 2015, sec. 3.1 eq. 8 "concat": score = v_a^T tanh(W_a [h_t; h̄_s]).

    Splitting W_a into its query and key halves gives v_a^T tanh(W_q h_t + W_k h̄_s): the same
    form as Bahdanau's additive score; only the decoder state that asks differs (Luong's h_t,
    after the recurrent step, against Bahdanau's s_{i-1}, before it). Luong's W_a has a bias,
    which the key half carries.
    """

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None,
                 **local: object) -> None:
        super().__init__(query_size, memory_size, attention_size, **local)
        self.key_layer = nn.Linear(memory_size, attention_size or query_size, bias=True)


class DotAttention(Attention):
    """Luong et al. 2015, sec. 3.1 eq. 8 "dot": score = h_t^T h̄_s (needs H == H2).

    Divided by nothing: the paper's form, not the scaled dot product of later Transformers.
    """

    def __init__(self, query_size: int, memory_size: int, **local: object) -> None:
        if query_size != memory_size:
            raise ValueError(
                f"dot attention needs the decoder state ({query_size}) and the encoder outputs "
                f"({memory_size}) to have one size; use general or concat attention instead"
            )
        super().__init__(query_size, memory_size, **local)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)


class GeneralAttention(Attention):
    """Luong et al. 2015, sec. 3.1 eq. 8 "general": score = h_t^T W_a h̄_s.

    W_a h̄_s is `project_keys` (once per batch); each step is then a dot product, as cheap as
    "dot" attention.
    """

    def __init__(self, query_size: int, memory_size: int, **local: object) -> None:
        super().__init__(query_size, memory_size, **local)
        self.key_layer = nn.Linear(memory_size, query_size, bias=False)  # W_a

    def project_keys(self, memory: Tensor) -> Tensor:
        return self.key_layer(memory)  # (B, S, H)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)


def make_attention(kind: str, query_size: int, memory_size: int, *, local: bool = False,
                   window: int = 10) -> Attention:
    """`kind` is one of SCORES; `local` turns on Luong's local-p window of half-width `window`."""
    options = {"local": local, "window": window}
    if kind == "bahdanau":
        return AdditiveAttention(query_size, memory_size, **options)
    if kind == "concat":
        return ConcatAttention(query_size, memory_size, **options)
    if kind == "dot":
        return DotAttention(query_size, memory_size, **options)
    if kind == "general":
        return GeneralAttention(query_size, memory_size, **options)
    raise ValueError(f"unknown attention {kind!r}; choose one of {', '.join(SCORES)}")
