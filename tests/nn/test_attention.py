"""Attention: hand-computed small cases, masking of padding, weights that sum to 1, local-p."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.nn.attention import (
    SCORES,
    AdditiveAttention,
    DotAttention,
    GeneralAttention,
    make_attention,
)


def _mask(lengths: list[int], steps: int) -> torch.Tensor:
    return torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]


def test_dot_attention_by_hand():
    query = torch.tensor([[1.0, 0.0]])
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # scores 1 and 0
    context, weights = DotAttention(2, 2)(query, memory, _mask([2], 2))
    e = math.e
    assert torch.allclose(weights, torch.tensor([[e / (e + 1), 1 / (e + 1)]]))
    assert torch.allclose(context, torch.tensor([[e / (e + 1), 1 / (e + 1)]]))


def test_general_with_identity_equals_dot():
    torch.manual_seed(0)
    general = GeneralAttention(3, 3)
    with torch.no_grad():
        general.key_layer.weight.copy_(torch.eye(3))
    query, memory = torch.randn(2, 3), torch.randn(2, 5, 3)
    mask = _mask([5, 3], 5)
    for got, want in zip(general(query, memory, mask), DotAttention(3, 3)(query, memory, mask),
                         strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_additive_attention_by_hand():
    attention = AdditiveAttention(1, 1, attention_size=1)
    with torch.no_grad():
        attention.query_layer.weight.fill_(1.0)  # W_a = 1
        attention.key_layer.weight.fill_(2.0)  # U_a = 2
        attention.energy.weight.fill_(3.0)  # v_a = 3
    query = torch.tensor([[0.5]])
    memory = torch.tensor([[[0.0], [1.0]]])
    _, weights = attention(query, memory, _mask([2], 2))
    scores = torch.tensor([3 * math.tanh(0.5 + 0.0), 3 * math.tanh(0.5 + 2.0)])
    assert torch.allclose(weights[0], torch.softmax(scores, dim=0))


def test_precomputed_keys_give_the_same_result():
    torch.manual_seed(1)
    attention = AdditiveAttention(4, 6)
    query, memory, mask = torch.randn(3, 4), torch.randn(3, 7, 6), _mask([7, 2, 5], 7)
    keys = attention.project_keys(memory)
    for a, b in zip(attention(query, memory, mask), attention(query, memory, mask, keys),
                    strict=True):
        assert torch.equal(a, b)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(SCORES), lengths=st.lists(st.integers(1, 6), min_size=1,
                                                       max_size=4), seed=st.integers(0, 99))
def test_global_weights_sum_to_one_and_ignore_padding(kind, lengths, seed):
    torch.manual_seed(seed)
    steps, size = max(lengths), 4
    attention = make_attention(kind, size, size)
    query, memory = torch.randn(len(lengths), size), torch.randn(len(lengths), steps, size)
    mask = _mask(lengths, steps)
    context, weights = attention(query, memory, mask)
    assert torch.allclose(weights.sum(dim=1), torch.ones(len(lengths)), atol=1e-6)
    assert bool((weights[~mask] == 0).all())
    garbage = memory.masked_fill(~mask[..., None], 1e3)  # padding holds anything at all
    context2, weights2 = attention(query, garbage, mask)
    assert torch.allclose(context, context2, atol=1e-5)
    assert torch.allclose(weights, weights2, atol=1e-6)


def test_local_p_window_and_gaussian():
    window = 2
    attention = DotAttention(3, 3, local=True, window=window)
    with torch.no_grad():
        for p in attention.position.parameters():
            p.zero_()  # v_p = 0 -> sigmoid(0) = 1/2 -> p_t = (S - 1) / 2
    lengths = [9, 5]
    mask = _mask(lengths, 9)
    query = torch.zeros(2, 3)  # every score 0: the softmax is uniform over the window
    memory = torch.randn(2, 9, 3)
    _, weights = attention(query, memory, mask)
    sigma = window / 2
    for row, length in enumerate(lengths):
        center = (length - 1) / 2
        inside = [s for s in range(9) if s < length and abs(s - center) <= window]
        for s in range(9):
            expected = 0.0
            if s in inside:
                expected = math.exp(-((s - center) ** 2) / (2 * sigma**2)) / len(inside)
            assert weights[row, s].item() == pytest.approx(expected, abs=1e-6)
    assert bool((weights.sum(dim=1) <= 1 + 1e-6).all())


def test_local_p_center_follows_each_sentence_length():
    attention = GeneralAttention(2, 2, local=True, window=1)
    with torch.no_grad():
        for p in attention.position.parameters():
            p.fill_(5.0)  # a large score: sigmoid -> ~1, p_t -> S - 1, the last real position
    query = torch.ones(2, 2)
    # zero memory: every content score is equal, so the window alone decides the argmax
    # (random memory made this test flaky: content can outweigh exp(-2) at the neighbour)
    _, weights = attention(query, torch.zeros(2, 6, 2), _mask([6, 3], 6))
    assert weights[0].argmax().item() == 5
    assert weights[1].argmax().item() == 2
    assert weights[1, 3:].abs().sum().item() == 0.0


def test_dot_needs_equal_sizes_and_window_must_be_positive():
    with pytest.raises(ValueError, match="general or concat"):
        DotAttention(4, 8)
    with pytest.raises(ValueError, match="D must be >= 1"):
        GeneralAttention(4, 4, local=True, window=0)
    with pytest.raises(ValueError, match="unknown attention"):
        make_attention("cosine", 4, 4)
