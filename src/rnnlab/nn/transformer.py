"""Transformer encoder and decoder layers and stacks (Vaswani et al. 2017, sec. 3.1), with a
key/value cache for incremental decoding.

One layer, post-LN as in the paper (`norm_first=False`) or pre-LN (`norm_first=True`, as GPT-2
and most later models, which train without a warm-up-sensitive start):

    post-LN:  x = LN(x + SelfAttn(x));        x = LN(x + FFN(x))
    pre-LN:   x = x + SelfAttn(LN(x));        x = x + FFN(LN(x))
    FFN(x) = W_2 act(W_1 x + b_1) + b_2                                     (sec. 3.3)

A decoder layer adds attention over the encoder's outputs (the "memory") between the two. The
parameter names are torch's (`self_attn`, `multihead_attn`, `linear1`, `linear2`, `norm1..3`;
a stack's `layers.N.*` and final `norm`), so `torch.nn.TransformerEncoderLayer`,
`TransformerDecoderLayer`, `TransformerEncoder` and `TransformerDecoder` state_dicts load into
these and give their outputs (tested).

Incremental decoding: a cache is a list with one dict per layer (`new_cache`). A layer that
gets one appends the keys and values of the new positions to it ("k", "v", each (B, H, S, d))
and computes the memory's keys and values only once ("memory_k", "memory_v"), so a step reads
one token and never re-reads the prefix. Every tensor in a cache keeps the batch on dim 0, so
beam search's default `select_batch` reorders it. Dropout is the only randomness; with it off,
step by step equals one full forward pass (tested).

Shapes: B batch, T positions read now, P positions already cached, S keys (= P + T for self
attention, the source length for the memory), E model width, H heads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.multihead import MultiheadAttention, causal_bias, padding_bias

Cache = list[dict[str, Tensor]]
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def new_cache(num_layers: int) -> Cache:
    """An empty key/value cache for a stack of `num_layers` layers."""
    return [{} for _ in range(num_layers)]


def cache_length(cache: Cache | None) -> int:
    """How many positions a cache already holds (0 for None or an empty cache)."""
    if not cache or "k" not in cache[0]:
        return 0
    return cache[0]["k"].shape[2]


class _Layer(nn.Module):
    """Self-attention and the feed-forward block: what encoder and decoder layers share."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = False,
                 bias: bool = True, layer_norm_eps: float = 1e-5, impl: str = "auto") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got "
                             f"{activation!r}")
        self.norm_first = norm_first
        self.activation = ACTIVATIONS[activation]
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, impl)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)  # W_1
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)  # W_2
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _self_attention(self, x: Tensor, mask: Tensor | None, cache: dict | None,
                        need_weights: bool) -> tuple[Tensor, Tensor | None]:
        q, k, v = self.self_attn.project_self(x)  # (B, H, T, d) each
        if cache is not None:
            if "k" in cache:  # the positions read before: (B, H, P, d) -> (B, H, P + T, d)
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        out, weights = self.self_attn.attend(q, k, v, mask, need_weights)  # (B, T, E)
        return self.dropout1(out), weights

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # FFN(x), (B, T, E)


class TransformerEncoderLayer(_Layer):
    """Self-attention + FFN. With a causal mask and a cache it is also a GPT block."""

    def forward(self, x: Tensor, mask: Tensor | None = None, cache: dict | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B, T, E), additive self-attention mask (B|1, 1, T, S) -> (B, T, E), weights."""
        if self.norm_first:
            attended, weights = self._self_attention(self.norm1(x), mask, cache, need_weights)
            x = x + attended
            x = x + self.dropout2(self._feed_forward(self.norm2(x)))
        else:
            attended, weights = self._self_attention(x, mask, cache, need_weights)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.dropout2(self._feed_forward(x)))
        return x, weights


class TransformerDecoderLayer(_Layer):
    """Causal self-attention, attention over the memory (sec. 3.2.3), FFN; returns the memory
    attention's weights (B, H, T, S) when asked (what a translation's attention plot shows)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = False,
                 bias: bool = True, layer_norm_eps: float = 1e-5, impl: str = "auto") -> None:
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, norm_first, bias,
                         layer_norm_eps, impl)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout, bias, impl)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout3 = nn.Dropout(dropout)

    def _memory_attention(self, x: Tensor, memory: Tensor | None, mask: Tensor | None,
                          cache: dict | None, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        attn = self.multihead_attn
        q = attn.project(x, "q")  # (B, H, T, d)
        if cache is not None and "memory_k" in cache:  # the memory does not change: once
            k, v = cache["memory_k"], cache["memory_v"]
        else:
            k, v = attn.project(memory, "k"), attn.project(memory, "v")  # (B, H, S, d)
            if cache is not None:
                cache["memory_k"], cache["memory_v"] = k, v
        out, weights = attn.attend(q, k, v, mask, need_weights)  # (B, T, E)
        return self.dropout2(out), weights

    def forward(self, x: Tensor, memory: Tensor | None, self_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, cache: dict | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B, T, E), memory (B, S, E) (None once cached) -> (B, T, E), memory weights."""
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), self_mask, cache, False)[0]
            attended, weights = self._memory_attention(self.norm2(x), memory, memory_mask,
                                                       cache, need_weights)
            x = x + attended
            x = x + self.dropout3(self._feed_forward(self.norm3(x)))
        else:
            x = self.norm1(x + self._self_attention(x, self_mask, cache, False)[0])
            attended, weights = self._memory_attention(x, memory, memory_mask, cache,
                                                       need_weights)
            x = self.norm2(x + attended)
            x = self.norm3(x + self.dropout3(self._feed_forward(x)))
        return x, weights


class _Stack(nn.Module):
    """N identical layers and, for pre-LN, the final LayerNorm the residual stream needs."""

    layer_class: type[_Layer] = TransformerEncoderLayer

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = False,
                 bias: bool = True, layer_norm_eps: float = 1e-5, impl: str = "auto") -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(
            self.layer_class(d_model, nhead, dim_feedforward, dropout, activation, norm_first,
                             bias, layer_norm_eps, impl) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if norm_first else None
        self.num_layers = num_layers

    def _check_cache(self, cache: Cache | None) -> None:
        if cache is not None and len(cache) != self.num_layers:
            raise ValueError(f"the cache has {len(cache)} layers, the stack {self.num_layers}")

    def _finish(self, x: Tensor) -> Tensor:
        return x if self.norm is None else self.norm(x)


class TransformerEncoder(_Stack):
    """Encoder stack: `out, weights = encoder(x, lengths)`; `causal=True` makes it a GPT."""

    def forward(self, x: Tensor, lengths: Tensor | None = None, *, causal: bool = False,
                cache: Cache | None = None, need_weights: bool = False,
                ) -> tuple[Tensor, list[Tensor] | None]:
        """x (B, T, E); lengths (B,) of the whole sequence (cached + new positions) -> out
        (B, T, E) and, with `need_weights`, each layer's self-attention weights (B, H, T, S)."""
        self._check_cache(cache)
        steps = cache_length(cache) + x.shape[1]  # S
        mask = _self_mask(x, steps, lengths, causal)
        weights: list[Any] = []
        for i, layer in enumerate(self.layers):
            x, w = layer(x, mask, None if cache is None else cache[i], need_weights)
            weights.append(w)
        return self._finish(x), weights if need_weights else None


class TransformerDecoder(_Stack):
    """Decoder stack (always causal): `out, weights = decoder(y, memory, memory_lengths)`."""

    layer_class = TransformerDecoderLayer

    def forward(self, x: Tensor, memory: Tensor | None, memory_lengths: Tensor | None = None, *,
                cache: Cache | None = None, need_weights: bool = False,
                ) -> tuple[Tensor, list[Tensor] | None]:
        """x (B, T, E) target positions, memory (B, S, E) -> out (B, T, E) and, with
        `need_weights`, each layer's memory-attention weights (B, H, T, S).

        With a cache, `memory` is read on the first call only (None later is fine) and the
        memory mask is kept in the cache too.
        """
        self._check_cache(cache)
        self_mask = _self_mask(x, cache_length(cache) + x.shape[1], None, causal=True)
        if cache is not None and "memory_k" in cache[0]:  # the memory was read before
            memory_mask = cache[0].get("memory_mask")
        else:
            if memory is None:
                raise ValueError("the decoder needs the memory on its first call")
            memory_mask = (None if memory_lengths is None
                           else padding_bias(memory_lengths.to(x.device), memory.shape[1]))
            if cache is not None and memory_mask is not None:
                cache[0]["memory_mask"] = memory_mask  # (B, 1, 1, S)
        weights: list[Any] = []
        for i, layer in enumerate(self.layers):
            x, w = layer(x, memory, self_mask, memory_mask, None if cache is None else cache[i],
                         need_weights)
            weights.append(w)
        return self._finish(x), weights if need_weights else None


def _self_mask(x: Tensor, steps: int, lengths: Tensor | None, causal: bool) -> Tensor | None:
    """The additive self-attention mask over `steps` keys for the last x.shape[1] of them."""
    mask = None
    if lengths is not None:
        mask = padding_bias(lengths.to(x.device), steps).to(x.dtype)  # (B, 1, 1, S)
    if causal:
        future = causal_bias(x.shape[1], steps, device=x.device).to(x.dtype)  # (T, S)
        mask = future if mask is None else mask + future  # (B, 1, T, S)
    return mask
