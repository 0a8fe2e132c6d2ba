"""A layer run from its first layer's projections (`forward_projected`, rows of `input_table`)
equals the layer run from its inputs; the table follows the weights; inference takes it where
it is faster."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import rnnlab.nn as rn
from rnnlab.nn import native
from rnnlab.nn.errors import RecurrentShapeError
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.model import Classifier

VARIANTS = [("LSTM", {}), ("LSTM", {"peephole": True}), ("GRU", {}),
            ("GRU", {"variant": "minimal"}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})]


def _tuple(state):
    return state if isinstance(state, tuple) else (state,)


@settings(max_examples=30, deadline=None)
@given(variant=st.sampled_from(VARIANTS), layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch_first=st.booleans(), steps=st.integers(1, 8), data=st.data())
def test_projected_run_equals_the_run_from_inputs_float64(variant, layers, bidirectional,
                                                          batch_first, steps, data):
    kind, options = variant
    batch = data.draw(st.integers(1, 6))
    lengths = data.draw(st.none() | st.lists(st.integers(1, steps), min_size=batch,
                                             max_size=batch).map(torch.tensor))
    torch.manual_seed(0)
    layer = getattr(rn, kind)(5, 4, num_layers=layers, bidirectional=bidirectional,
                              batch_first=batch_first, **options).double().eval()
    embedding = torch.randn(9, 5, dtype=torch.float64)
    tokens = torch.randint(9, (batch, steps) if batch_first else (steps, batch))
    with torch.no_grad():
        out, final = layer(embedding[tokens], lengths=lengths)
        table = layer.input_table(embedding)
        out_p, final_p = layer.forward_projected(F.embedding(tokens, table), lengths=lengths)
    torch.testing.assert_close(out_p, out, rtol=0, atol=1e-12)
    for a, b in zip(_tuple(final_p), _tuple(final), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_table_is_each_direction_s_input_projection_and_follows_the_weights():
    torch.manual_seed(0)
    layer = rn.LSTM(3, 2, bidirectional=True)
    embedding = torch.nn.Embedding(7, 3)
    table = layer.input_table(embedding.weight)
    expected = torch.cat([F.linear(embedding.weight, layer.weight_ih_l0, layer.bias_ih_l0),
                          F.linear(embedding.weight, layer.weight_ih_l0_reverse,
                                   layer.bias_ih_l0_reverse)], dim=1)
    torch.testing.assert_close(table, expected)
    assert layer.input_table(embedding.weight) is table  # unchanged weights: kept
    with torch.no_grad():
        layer.bias_ih_l0_reverse.add_(1.0)  # an optimizer step changes a weight in place
    changed = layer.input_table(embedding.weight)
    torch.testing.assert_close(changed[:, 8:], table[:, 8:] + 1.0)
    with torch.no_grad():
        embedding.weight.mul_(2.0)
    torch.testing.assert_close(layer.input_table(embedding.weight)[:, :8],
                               F.linear(embedding.weight, layer.weight_ih_l0, layer.bias_ih_l0))


def test_wrong_projection_width_is_a_shape_error():
    layer = rn.GRU(3, 2, bidirectional=True)
    with pytest.raises(RecurrentShapeError, match="12 features"):
        layer.forward_projected(torch.zeros(4, 1, 6))


def test_inference_alone_looks_up_inputs():
    layer = rn.LSTM(300, 150, bidirectional=True)
    weight = torch.zeros(1000, 300)
    with torch.no_grad():
        assert not layer.looks_up_inputs(weight, 32)  # training mode
        layer.eval()
        assert layer.looks_up_inputs(weight, 32) is native.available()
        assert not layer.looks_up_inputs(weight, 1)  # one sentence: torch's padded kernel
        assert not layer.looks_up_inputs(torch.zeros(100_000, 300), 32)  # table too large
        assert not rn.LSTM(64, 512).eval().looks_up_inputs(torch.zeros(100, 64), 32)
    assert not layer.looks_up_inputs(weight, 32)  # gradients wanted


@pytest.mark.skipif(not native.available(), reason="the table path runs the compiled loops")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_classifier_predicts_the_same_through_the_table(cell):
    torch.manual_seed(0)
    config = ClassifyConfig(cell=cell, embedding_size=12, hidden=8, bidirectional=True,
                            pooling="attention")
    model = Classifier(50, 3, config).eval()
    tokens = torch.randint(1, 50, (5, 9))
    lengths = torch.tensor([9, 4, 7, 1, 9])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        assert model.rnn.looks_up_inputs(model.embedding.weight, 5)
        logits, weights = model(tokens, lengths)
        model.rnn.looks_up_inputs = lambda weight, batch: False  # torch's kernels
        logits_ref, weights_ref = model(tokens, lengths)
    torch.testing.assert_close(logits, logits_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights, weights_ref, rtol=1e-5, atol=1e-6)
