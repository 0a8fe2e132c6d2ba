"""Structured self-attention over one sequence (Lin et al. 2017, "A Structured Self-attentive
Sentence Embedding", sec. 2):

    A = softmax(W_s2 tanh(W_s1 Hᵀ))        (r, T): r "hops", each a distribution over tokens
    M = A H                                (r, S): r weighted sums of the states
    P = ‖A Aᵀ − I‖²_F                      the penalty that pushes the hops apart (sec. 2.2)

With r = 1 it is the additive attention pooling of one learned query; r > 1 lets a sentence
embedding hold several aspects at once, and P (added to the loss with a coefficient) stops the
hops from all settling on the same words. Padded tokens get -inf before the softmax, so their
weights are exactly 0 and each hop sums to 1 over the sentence's own tokens.

Shapes: B batch, T tokens, S state size, r hops, d_a the scorer's hidden size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StructuredSelfAttention(nn.Module):
    """`pooled, weights = attention(states, lengths)`: pooled (B, r*S) is M flattened (sec. 2:
    "we flatten M and feed it to a fully connected layer"), weights (B, r, T) is A."""

    def __init__(self, state_size: int, attention_size: int, hops: int) -> None:
        super().__init__()
        if hops < 1:
            raise ValueError(f"hops must be >= 1, got {hops}")
        self.hops = hops
        self.ws1 = nn.Linear(state_size, attention_size, bias=False)  # W_s1 (d_a, S)
        self.ws2 = nn.Linear(attention_size, hops, bias=False)  # W_s2 (r, d_a)
        self.output_size = hops * state_size

    def forward(self, states: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """states (B, T, S), lengths (B,) -> M flattened (B, r*S), A (B, r, T)."""
        scores = self.ws2(torch.tanh(self.ws1(states))).transpose(1, 2)  # (B, r, T)
        padded = torch.arange(states.shape[1], device=states.device)[None, :] >= lengths[:, None]
        weights = torch.softmax(scores.masked_fill(padded[:, None, :], float("-inf")), dim=-1)
        pooled = torch.bmm(weights, states)  # (B, r, S) = A H
        return pooled.flatten(1), weights


def attention_penalty(weights: Tensor) -> Tensor:
    """P = ‖A Aᵀ − I‖²_F for each sentence: weights (B, r, T) -> (B,)."""
    gram = torch.bmm(weights, weights.transpose(1, 2))  # (B, r, r) = A Aᵀ
    identity = torch.eye(weights.shape[1], device=weights.device, dtype=weights.dtype)
    return (gram - identity).square().sum(dim=(1, 2))
