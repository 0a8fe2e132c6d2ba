"""ConvS2S blocks against their equations: GLU, the causal decoder convolution with its
attention and residuals, incremental decoding equal to the full pass, padding invisible."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.errors import RnnlabError
from rnnlab.nn.conv import ConvDecoder, ConvDecoderLayer, ConvEncoder, glu

SHAPE = dict(embedding=6, channels=8, layers=3, kernel=3, dropout=0.0, max_positions=32)


def test_glu_is_a_times_sigmoid_b():
    x = torch.randn(4, 5, 10)
    a, b = x[..., :5], x[..., 5:]
    assert torch.allclose(glu(x), a * torch.sigmoid(b))


def _memory(batch=2, source=5, embedding=6):
    keys, values = torch.randn(batch, source, embedding), torch.randn(batch, source, embedding)
    mask = torch.tensor([[True] * source, [True] * (source - 2) + [False] * 2])[:batch]
    return keys, values, mask


def test_decoder_layer_equals_its_equations():
    """Position i reads inputs i-k+1 .. i (zeros before 0), then the attention and residuals
    written out one position at a time."""
    torch.manual_seed(0)
    k, c, e = 3, 4, 6
    layer = ConvDecoderLayer(c, e, k, dropout=0.0)
    h, g = torch.randn(2, 5, c), torch.randn(2, 5, e)
    keys, values, mask = _memory()
    out, attention, _ = layer(h, g, keys, values, mask, layer.empty_history(h))
    w, bias = layer.conv.weight, layer.conv.bias  # (2C, C, k), (2C,)
    for b in range(2):
        m = int(mask[b].sum())
        for i in range(5):
            window = [h[b, j] if j >= 0 else torch.zeros(c) for j in range(i - k + 1, i + 1)]
            ab = bias + sum(w[:, :, n] @ x for n, x in enumerate(window))  # (2C,)
            v = ab[:c] * torch.sigmoid(ab[c:])  # GLU
            d = (layer.attention_in(v) + g[b, i]) * math.sqrt(0.5)
            a = torch.softmax(keys[b, :m] @ d, dim=0)  # (m,)
            context = (a[:, None] * values[b, :m]).sum(0) * math.sqrt(m)
            expected = ((v + layer.attention_out(context)) * math.sqrt(0.5) + h[b, i]) \
                * math.sqrt(0.5)
            assert torch.allclose(out[b, i], expected, atol=1e-5), (b, i)
            assert torch.allclose(attention[b, i, :m], a, atol=1e-6)
            assert attention[b, i, m:].abs().sum() == 0


def test_decoder_is_causal():
    """Changing the token at position j leaves the logits before j untouched, and changes j's."""
    torch.manual_seed(1)
    decoder = ConvDecoder(11, **SHAPE).eval()
    keys, values, mask = _memory()
    tgt = torch.randint(4, 11, (2, 7))
    changed = tgt.clone()
    changed[:, 4] = (tgt[:, 4] - 3) % 7 + 4
    with torch.no_grad():
        before = decoder(tgt, keys, values, mask)[0]
        after = decoder(changed, keys, values, mask)[0]
    assert torch.allclose(before[:, :4], after[:, :4], atol=0)
    assert not torch.allclose(before[:, 4], after[:, 4])


@settings(max_examples=10, deadline=None)
@given(kernel=st.sampled_from([1, 2, 3, 5]), layers=st.integers(1, 3),
       length=st.integers(1, 8))
def test_step_by_step_equals_full_pass(kernel, layers, length):
    torch.manual_seed(2)
    decoder = ConvDecoder(11, **{**SHAPE, "kernel": kernel, "layers": layers}).eval()
    keys, values, mask = _memory()
    tgt = torch.randint(4, 11, (2, length))
    with torch.no_grad():
        full, full_attention, _ = decoder(tgt, keys, values, mask)
        histories, position = None, torch.zeros(2, dtype=torch.long)
        for t in range(length):
            logits, attention, histories = decoder(tgt[:, t:t + 1], keys, values, mask,
                                                   histories, position)
            position = position + 1
            assert all(h.shape == (2, kernel - 1, SHAPE["channels"]) for h in histories)
            assert torch.allclose(logits[:, 0], full[:, t], atol=1e-5), t
            assert torch.allclose(attention[-1][:, 0], full_attention[-1][:, t], atol=1e-6)


def test_encoder_padding_is_invisible():
    torch.manual_seed(3)
    encoder = ConvEncoder(11, **SHAPE).eval()
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 4, 3, 0, 0]])
    lengths = torch.tensor([5, 3])
    with torch.no_grad():
        keys, values, mask = encoder(src, lengths)
        alone_keys, alone_values, _ = encoder(src[1:, :3], lengths[1:])
    assert torch.allclose(keys[1, :3], alone_keys[0], atol=1e-6)
    assert torch.allclose(values[1, :3], alone_values[0], atol=1e-6)
    assert keys[1, 3:].abs().sum() == 0 and mask.tolist()[1] == [True] * 3 + [False] * 2


def test_errors_are_clear():
    with pytest.raises(RnnlabError, match="odd"):
        ConvEncoder(11, **{**SHAPE, "kernel": 4})
    decoder = ConvDecoder(11, **SHAPE)
    keys, values, mask = _memory()
    with pytest.raises(RnnlabError, match="max_positions 32"):
        decoder(torch.ones(2, 33, dtype=torch.long), keys, values, mask)
