"""Attention and Transformer blocks against the direct equations and torch's own modules."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnlab.decoding.beam import select_batch
from rnnlab.nn import (
    LearnedPositions,
    MultiheadAttention,
    SinusoidalPositions,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    causal_bias,
    new_cache,
    padding_bias,
    scaled_dot_product_attention,
)

ATOL = 1e-5


def _lengths_mask(lengths: list[int], steps: int) -> torch.Tensor:
    """torch's key_padding_mask: True at padding."""
    return torch.arange(steps)[None, :] >= torch.tensor(lengths)[:, None]


def _torch_causal(steps: int) -> torch.Tensor:
    """torch's bool attn_mask: True where a query may not look (the future)."""
    return torch.ones(steps, steps, dtype=torch.bool).triu(1)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 3), t=st.integers(1, 6), s=st.integers(1, 6),
       d=st.integers(1, 5), causal=st.booleans(), seed=st.integers(0, 10_000))
def test_equation_and_fused_paths_agree(b, h, t, s, d, causal, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for n in (t, s, s))
    lengths = torch.randint(1, s + 1, (b,), generator=g)
    mask = padding_bias(lengths, s)  # (B, 1, 1, S)
    if causal and s >= t:  # every query keeps at least key 0
        mask = mask + causal_bias(t, s)
    fast, none = scaled_dot_product_attention(q, k, v, mask, impl="fused")
    slow, weights = scaled_dot_product_attention(q, k, v, mask, impl="equation",
                                                 need_weights=True)
    assert none is None
    assert torch.allclose(fast, slow, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(b, h, t))
    hidden = torch.isinf(mask.expand(b, h, t, s))
    assert (weights[hidden] == 0).all()


def test_equation_by_hand():
    """One query, two keys: weights softmax([q·k1, q·k2] / √2)."""
    q = torch.tensor([[[1.0, 1.0]]])
    k = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    v = torch.tensor([[[2.0], [4.0]]])
    out, weights = scaled_dot_product_attention(q, k, v, impl="equation", need_weights=True)
    a = math.exp(1 / math.sqrt(2))
    expected = torch.tensor([a / (a + 1), 1 / (a + 1)])
    assert torch.allclose(weights[0, 0], expected)
    assert torch.allclose(out[0, 0, 0], expected @ torch.tensor([2.0, 4.0]))


def test_fused_gradients_equal_equation_gradients():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 4, requires_grad=True) for n in (3, 5, 5))
    mask = padding_bias(torch.tensor([5, 2]), 5)
    grads = []
    for impl in ("fused", "equation"):
        out, _ = scaled_dot_product_attention(q, k, v, mask, impl=impl)
        grads.append(torch.autograd.grad(out.square().sum(), (q, k, v)))
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_bad_impl_and_fused_weights_refused():
    q = torch.randn(1, 1, 2, 2)
    with pytest.raises(ValueError, match="impl"):
        scaled_dot_product_attention(q, q, q, impl="fast")
    with pytest.raises(ValueError, match="weights"):
        scaled_dot_product_attention(q, q, q, impl="fused", need_weights=True)
    with pytest.raises(ValueError, match="divisible"):
        MultiheadAttention(10, 3)


def test_masks_against_brute_force():
    bias = causal_bias(2, 5)  # two new queries after three cached keys: positions 3 and 4
    for i in range(2):
        for j in range(5):
            assert (bias[i, j] == 0) == (j <= 3 + i)
    pad = padding_bias(torch.tensor([3, 1]), 4)
    assert pad.shape == (2, 1, 1, 4)
    assert torch.equal(torch.isinf(pad[:, 0, 0]), _lengths_mask([3, 1], 4))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("impl", ["equation", "fused"])
def test_multihead_matches_torch_self_attention(bias, impl):
    torch.manual_seed(0)
    e, h = 12, 3
    ref = nn.MultiheadAttention(e, h, bias=bias, batch_first=True)
    ours = MultiheadAttention(e, h, bias=bias, impl=impl)
    ours.load_state_dict(ref.state_dict())
    assert set(ours.state_dict()) == set(ref.state_dict())
    x = torch.randn(2, 5, e)
    lengths = [5, 3]
    expected, expected_w = ref(x, x, x, key_padding_mask=_lengths_mask(lengths, 5),
                               attn_mask=_torch_causal(5))
    mask = padding_bias(torch.tensor(lengths), 5) + causal_bias(5)
    out, weights = ours(x, x, x, mask, need_weights=impl == "equation")
    assert torch.allclose(out, expected, atol=ATOL)
    if weights is not None:
        assert torch.allclose(weights.mean(1), expected_w, atol=ATOL)


def test_multihead_matches_torch_cross_attention():
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiheadAttention(8, 2)
    ours.load_state_dict(ref.state_dict())
    query, memory = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    lengths = [6, 2, 4]
    expected, expected_w = ref(query, memory, memory, key_padding_mask=_lengths_mask(lengths, 6))
    out, weights = ours(query, memory, memory, padding_bias(torch.tensor(lengths), 6),
                        need_weights=True)
    assert torch.allclose(out, expected, atol=ATOL)
    assert torch.allclose(weights.mean(1), expected_w, atol=ATOL)


def test_sinusoids_are_the_papers_formula():
    d = 6
    table = SinusoidalPositions(d, max_len=4)(5, offset=3)  # grows past max_len on demand
    for row, pos in enumerate(range(3, 8)):
        for i in range(d):
            angle = pos / 10000 ** (2 * (i // 2) / d)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert table[row, i].item() == pytest.approx(expected, abs=1e-5)
    assert SinusoidalPositions(5)(3).shape == (3, 5)  # odd widths too
    assert not list(SinusoidalPositions(4).state_dict())  # nothing to save


def test_learned_positions_stop_at_the_context_length():
    positions = LearnedPositions(4, max_len=3)
    assert torch.equal(positions(2, offset=1), positions.weight[1:3])
    with pytest.raises(ValueError, match="context length"):
        positions(2, offset=2)


def _layer_options(norm_first: bool, activation: str, bias: bool) -> dict:
    return dict(dim_feedforward=16, dropout=0.0, activation=activation, norm_first=norm_first,
                bias=bias)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation,bias", [("relu", True), ("gelu", False)])
def test_encoder_layer_matches_torch(norm_first, activation, bias):
    torch.manual_seed(2)
    options = _layer_options(norm_first, activation, bias)
    ref = nn.TransformerEncoderLayer(8, 2, batch_first=True, **options)
    ours = TransformerEncoderLayer(8, 2, **options)
    ours.load_state_dict(ref.state_dict())
    x, lengths = torch.randn(2, 5, 8), [5, 2]
    expected = ref(x, src_key_padding_mask=_lengths_mask(lengths, 5))
    out, _ = ours(x, padding_bias(torch.tensor(lengths), 5))
    for b, n in enumerate(lengths):
        assert torch.allclose(out[b, :n], expected[b, :n], atol=ATOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_matches_torch(norm_first):
    torch.manual_seed(3)
    options = _layer_options(norm_first, "relu", True)
    layer = nn.TransformerEncoderLayer(8, 2, batch_first=True, **options)
    ref = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8) if norm_first else None,
                                enable_nested_tensor=False)
    ours = TransformerEncoder(2, 8, 2, **options)
    ours.load_state_dict(ref.state_dict())
    x, lengths = torch.randn(3, 4, 8), [4, 1, 3]
    expected = ref(x, mask=_torch_causal(4), src_key_padding_mask=_lengths_mask(lengths, 4),
                   is_causal=True)
    out, _ = ours(x, torch.tensor(lengths), causal=True)
    for b, n in enumerate(lengths):
        assert torch.allclose(out[b, :n], expected[b, :n], atol=ATOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(7)
    options = _layer_options(norm_first, "gelu", False)
    ref = nn.TransformerDecoderLayer(8, 4, batch_first=True, **options)
    ours = TransformerDecoderLayer(8, 4, **options)
    ours.load_state_dict(ref.state_dict())
    y, memory, lengths = torch.randn(3, 2, 8), torch.randn(3, 5, 8), [5, 1, 4]
    expected = ref(y, memory, tgt_mask=_torch_causal(2),
                   memory_key_padding_mask=_lengths_mask(lengths, 5))
    out, _ = ours(y, memory, causal_bias(2), padding_bias(torch.tensor(lengths), 5))
    assert torch.allclose(out, expected, atol=ATOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_matches_torch(norm_first):
    torch.manual_seed(4)
    options = _layer_options(norm_first, "relu", True)
    layer = nn.TransformerDecoderLayer(8, 2, batch_first=True, **options)
    ref = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8) if norm_first else None)
    ours = TransformerDecoder(2, 8, 2, **options)
    ours.load_state_dict(ref.state_dict())
    assert set(ours.state_dict()) == set(ref.state_dict())
    y, memory, lengths = torch.randn(2, 4, 8), torch.randn(2, 6, 8), [6, 3]
    expected = ref(y, memory, tgt_mask=_torch_causal(4), tgt_is_causal=True,
                   memory_key_padding_mask=_lengths_mask(lengths, 6))
    out, weights = ours(y, memory, torch.tensor(lengths), need_weights=True)
    assert torch.allclose(out, expected, atol=ATOL)
    assert len(weights) == 2 and weights[0].shape == (2, 2, 4, 6)
    assert (weights[1][1, :, :, 3:] == 0).all()  # no weight on the source's padding


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_steps_equal_the_full_causal_pass(norm_first):
    torch.manual_seed(5)
    encoder = TransformerEncoder(2, 8, 2, **_layer_options(norm_first, "gelu", True)).eval()
    x = torch.randn(2, 6, 8)
    full, _ = encoder(x, causal=True)
    cache = new_cache(2)
    first, _ = encoder(x[:, :2], causal=True, cache=cache)  # a prompt of two, then one by one
    steps = [first] + [encoder(x[:, t : t + 1], causal=True, cache=cache)[0]
                       for t in range(2, 6)]
    assert cache[0]["k"].shape == (2, 2, 6, 4)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=ATOL)


def test_cached_decoder_steps_equal_the_full_pass_and_follow_beams():
    torch.manual_seed(6)
    decoder = TransformerDecoder(2, 8, 2, **_layer_options(True, "relu", True)).eval()
    y, memory, lengths = torch.randn(2, 5, 8), torch.randn(2, 3, 8), torch.tensor([3, 2])
    full, _ = decoder(y, memory, lengths)
    cache = new_cache(2)
    steps = [decoder(y[:, :1], memory, lengths, cache=cache)[0]]
    steps += [decoder(y[:, t : t + 1], None, cache=cache)[0] for t in range(1, 3)]
    assert torch.allclose(torch.cat(steps, dim=1), full[:, :3], atol=ATOL)
    # beam search follows prefixes with select_batch: swap the two sentences
    swapped = select_batch(cache, torch.tensor([1, 0]))
    out, _ = decoder(y.flip(0)[:, 3:4], None, cache=swapped)
    assert torch.allclose(out, full.flip(0)[:, 3:4], atol=ATOL)


def test_decoder_without_memory_on_first_call_is_an_error():
    decoder = TransformerDecoder(1, 4, 1, dim_feedforward=8)
    with pytest.raises(ValueError, match="memory"):
        decoder(torch.randn(1, 1, 4), None, cache=new_cache(1))
