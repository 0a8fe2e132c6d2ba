"""Gradient flow through time against hand computations, the NumPy reference and finite
differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.diagnostics.gradients import (
    DTYPE,
    clipping_effect,
    gradient_norms,
    gradient_study,
    linear_readout,
    random_inputs,
    random_layer,
)
from rnnlab.nn.recurrent import RNN
from rnnlab.reference.rnn import rnn_forward


def _one_unit_rnn(nonlinearity: str, w_hh: float, w_ih: float = 1.0) -> RNN:
    layer = RNN(1, 1, nonlinearity=nonlinearity, bias=False, impl="loop").to(DTYPE)
    with torch.no_grad():
        layer.weight_hh_l0.fill_(w_hh)
        layer.weight_ih_l0.fill_(w_ih)
    return layer


def test_relu_unit_gradient_is_a_power_of_the_weight():
    # h_t = relu(x_t + w h_{t-1}) stays positive for positive inputs, so ∂h_t/∂h_{t-1} = w and
    # ∂L/∂h_t = 2 w^(T-t) for L = 2 h_T.
    w, steps = 0.5, 12
    x = torch.rand(steps, 3, 1, dtype=DTYPE) + 0.1
    norms, _ = gradient_norms(_one_unit_rnn("relu", w), x, lambda h: 2 * h[:, 0])
    expected = [2 * w ** (steps - t) for t in range(1, steps + 1)]
    assert norms == pytest.approx(expected, rel=1e-12)


def test_tanh_unit_gradient_matches_the_hand_product_over_reference_states():
    # ∂L/∂h_t = ∏_{k=t+1..T} w (1 - h_k²) with the states from the NumPy reference's forward.
    w, steps = 1.3, 8
    x = torch.randn(steps, 1, 1, dtype=DTYPE, generator=torch.Generator().manual_seed(3))
    norms, _ = gradient_norms(_one_unit_rnn("tanh", w, 0.7), x, lambda h: h[:, 0])
    params = {"weight_ih": np.array([[0.7]]), "weight_hh": np.array([[w]])}
    hs, _ = rnn_forward(x.numpy(), np.zeros((1, 1)), params)
    h = hs[:, 0, 0]
    expected = [abs(np.prod([w * (1 - h[k] ** 2) for k in range(t + 1, steps)]))
                for t in range(steps)]
    assert norms == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm-peephole", "gru-minimal", "rnn"])
def test_gradient_matches_finite_differences(cell):
    # Perturb h_t in one direction, run the remaining steps, and compare the change of L.
    steps, hidden, t, j = 6, 3, 2, 1
    layer = random_layer(cell, 2, hidden, seed=1)
    x = random_inputs(steps, 1, 2, seed=2)
    loss_fn = linear_readout(hidden, seed=4)
    hs, states, state = [], [], None
    for x_t in x.unbind(0):
        h, state = layer.step(x_t, state)
        hs.append(h)
        states.append(state)
    layer.zero_grad()
    hs_grad = []
    state = None
    for x_t in x.unbind(0):
        h, state = layer.step(x_t, state)
        h.retain_grad()
        hs_grad.append(h)
    loss_fn(hs_grad[-1]).sum().backward()
    analytic = float(hs_grad[t].grad[0, j])

    def loss_after(delta: float) -> float:
        with torch.no_grad():
            state = states[t]
            bump = torch.zeros_like(hs[t])
            bump[0, j] = delta
            state = state + bump if isinstance(state, torch.Tensor) else \
                (state[0] + bump, *state[1:])
            h = None
            for x_s in x.unbind(0)[t + 1 :]:
                h, state = layer.step(x_s, state)
            return float(loss_fn(h).sum())

    eps = 1e-6
    numeric = (loss_after(eps) - loss_after(-eps)) / (2 * eps)
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-10)
    # and the measured norm is the norm of this very gradient row
    norms, _ = gradient_norms(layer, x, loss_fn)
    assert norms[t] == pytest.approx(float(hs_grad[t].grad.norm()), rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(["rnn", "rnn-relu", "lstm", "gru", "gru-minimal"]),
       hidden=st.integers(1, 6), steps=st.integers(1, 7), batch=st.integers(1, 4))
def test_last_step_gradient_is_the_unit_readout(cell, hidden, steps, batch):
    # ℓ = w · h_T with ||w|| = 1, so every example's ∂ℓ/∂h_T has norm exactly 1.
    norms, _ = gradient_norms(random_layer(cell, 3, hidden), random_inputs(steps, batch, 3),
                              linear_readout(hidden))
    assert len(norms) == steps
    assert norms[-1] == pytest.approx(1.0, rel=1e-12)


def test_clipping_cuts_the_norm_and_keeps_the_direction():
    layer = random_layer("rnn", 4, 8, orthogonal=True, gain=2.0)
    effect = clipping_effect(layer, random_inputs(30, 4, 4), linear_readout(8), max_norm=0.5)
    assert effect["pre_norm"] > 0.5
    assert effect["post_norm"] == pytest.approx(0.5, rel=1e-6)
    assert effect["cosine"] == pytest.approx(1.0, abs=1e-9)


def test_study_shows_vanishing_and_exploding():
    study = gradient_study(["rnn", "lstm"], length=30, hidden=8, input_size=3, batch=2)
    variants = {v.label: v for v in study.variants}
    assert variants["rnn, torch init"].ratio < 1e-3  # U(±1/√H) weights: spectral radius < 1
    assert variants["rnn, 2 × orthogonal W_hh"].ratio > 1  # every singular value 2
    assert variants["lstm, forget bias 1"].ratio > variants["lstm, torch init"].ratio
    assert [c.label for c in study.curves] == ["rnn", "lstm"]
