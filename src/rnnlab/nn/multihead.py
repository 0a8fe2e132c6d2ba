"""Scaled dot-product and multi-head attention (Vaswani et al. 2017, sec. 3.2), and their masks.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + M) V                         (sec. 3.2.1, eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)                        (sec. 3.2.2)

M is an *additive* mask: 0 where a query may look, -inf where it may not (padding, the future),
so the forbidden weights are exactly 0 after the softmax. Masks are built from `lengths`, as the
recurrent layers take them (`padding_bias`), and from positions (`causal_bias`); adding two
masks combines them.

Two paths, one set of weights (as the recurrent layers' `impl`): "equation" computes eq. 1 line
by line and can return the weights; "fused" calls `F.scaled_dot_product_attention` (a fused
kernel, no (T, S) weights kept for backward where the backend allows); "auto" takes "fused"
unless the weights are asked for. Both agree to 1e-6 (tested).

`MultiheadAttention` keeps torch's parameter names and layout (`in_proj_weight` (3E, E) holding
W^Q, W^K, W^V of all heads stacked, `in_proj_bias`, `out_proj` = W^O), so a
`torch.nn.MultiheadAttention` state_dict loads into it and gives the same outputs (tested).

Shapes: B batch, T queries, S keys, E model width, H heads, d = E / H per head.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

IMPLS = ("auto", "fused", "equation")


def padding_bias(lengths: Tensor, steps: int) -> Tensor:
    """(B,) real lengths -> (B, 1, 1, S) additive mask: -inf on each row's padded keys."""
    lengths = lengths.reshape(-1, 1)
    padded = torch.arange(steps, device=lengths.device)[None, :] >= lengths  # (B, S)
    bias = torch.zeros(padded.shape, dtype=torch.get_default_dtype(), device=lengths.device)
    return bias.masked_fill(padded, float("-inf"))[:, None, None, :]  # (B, 1, 1, S)


def causal_bias(queries: int, keys: int | None = None, *, device: torch.device | str | None
                = None) -> Tensor:
    """(T, S) additive mask that hides the future: query i, the (S - T + i)-th position of the
    sequence (the first S - T keys come from a cache), sees keys 0 .. S - T + i."""
    keys = queries if keys is None else keys
    past = keys - queries  # keys already cached before the first query
    rows = torch.arange(queries, device=device)[:, None] + past  # (T, 1) absolute positions
    future = torch.arange(keys, device=device)[None, :] > rows  # (T, S)
    bias = torch.zeros(future.shape, dtype=torch.get_default_dtype(), device=device)
    return bias.masked_fill(future, float("-inf"))


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout: float = 0.0,
    need_weights: bool = False, impl: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """softmax(Q Kᵀ / √d_k + mask) V for q (..., T, d), k (..., S, d), v (..., S, d_v).

    `mask` is additive and broadcasts to (..., T, S); `dropout` drops attention weights (only
    pass it while training). Returns the output (..., T, d_v) and, with `need_weights`, the
    weights (..., T, S) (before dropout), else None.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "fused" and need_weights:
        raise ValueError("the fused path keeps no attention weights; use impl='equation'")
    if impl == "fused" or (impl == "auto" and not need_weights):
        if mask is not None:
            mask = mask.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout), None
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)  # (..., T, S)
    out = F.dropout(weights, dropout) @ v if dropout else weights @ v  # (..., T, d_v)
    return out, weights if need_weights else None


class MultiheadAttention(nn.Module):
    """H heads of scaled dot-product attention over learned projections, then W^O.

    Call: `out, weights = mha(query, key, value, mask)` with batch-first (B, T, E) / (B, S, E)
    inputs and an additive mask broadcasting to (B, H, T, S). `weights` (B, H, T, S) per head
    when `need_weights`, else None (average over dim 1 for torch's default view).

    Incremental decoding reuses the projections: `project(x, part)` gives one of Q, K, V split
    into heads, and `attend(q, k, v, mask)` finishes the job, so a layer can keep K and V of the
    tokens already read in a cache and project only the new token (see `transformer.py`).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 impl: str = "auto") -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.impl = float(dropout), impl
        # W^Q, W^K, W^V of every head, stacked as torch stores them: rows [0, E) are W^Q, ...
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)  # W^O
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation: Xavier-uniform projections, zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)

    def project(self, x: Tensor, part: str) -> Tensor:
        """x (B, T, E) -> the heads (B, H, T, d) of x W^Q, x W^K or x W^V (part q, k or v)."""
        index = "qkv".index(part)
        rows = slice(index * self.embed_dim, (index + 1) * self.embed_dim)
        bias = None if self.in_proj_bias is None else self.in_proj_bias[rows]
        return self._split(F.linear(x, self.in_proj_weight[rows], bias))

    def project_self(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention's Q, K and V of x (B, T, E) in one matrix product, each (B, H, T, d)."""
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return self._split(q), self._split(k), self._split(v)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
               need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Heads q (B, H, T, d), k, v (B, H, S, d) -> (B, T, E) after W^O, and the weights."""
        out, weights = scaled_dot_product_attention(
            q, k, v, mask, dropout=self.dropout if self.training else 0.0,
            need_weights=need_weights, impl=self.impl)  # (B, H, T, d)
        b, _, t, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t, self.embed_dim)  # (B, T, E): Concat(heads)
        return self.out_proj(out), weights

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        if query.dim() != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"expected query (B, T, {self.embed_dim}), got "
                             f"{tuple(query.shape)}")
        if query is key and key is value:
            q, k, v = self.project_self(query)
        else:
            q, k, v = self.project(query, "q"), self.project(key, "k"), self.project(value, "v")
        return self.attend(q, k, v, mask, need_weights)
