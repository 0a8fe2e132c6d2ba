"""Structured self-attention (Lin et al. 2017) against its equations, written out per sentence."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.nn.structured_attention import StructuredSelfAttention, attention_penalty


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4), hops=st.integers(1, 3),
       seed=st.integers(0, 1000))
def test_hops_are_the_papers_equations_over_each_sentence_s_own_tokens(lengths, hops, seed):
    torch.manual_seed(seed)
    attention = StructuredSelfAttention(5, 4, hops)
    steps = max(lengths)
    states = torch.randn(len(lengths), steps, 5)
    pooled, weights = attention(states, torch.tensor(lengths))
    assert pooled.shape == (len(lengths), hops * 5) and weights.shape == (len(lengths), hops, steps)
    for b, n in enumerate(lengths):
        h = states[b, :n]  # (n, S): the sentence alone, no padding
        a = torch.softmax(attention.ws2.weight @ torch.tanh(attention.ws1.weight @ h.T), dim=1)
        assert torch.allclose(weights[b, :, :n], a, atol=1e-6)  # A = softmax(W_s2 tanh(W_s1 Hᵀ))
        assert (weights[b, :, n:] == 0).all()
        assert torch.allclose(pooled[b], (a @ h).flatten(), atol=1e-6)  # M = A H, flattened


def test_penalty_is_the_frobenius_norm_by_brute_force():
    weights = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]],   # disjoint hops: A Aᵀ diagonal
                            [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])  # the same hop twice
    # first: A Aᵀ = [[0.5, 0], [0, 1]] -> (0.5 - 1)² = 0.25; second: [[1, 1], [1, 1]] -> 2
    assert torch.allclose(attention_penalty(weights), torch.tensor([0.25, 2.0]))
