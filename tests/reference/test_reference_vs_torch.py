"""The torch code against the NumPy reference (the oracle), in float64, to 1e-10.

Three levels are checked with the same parameters and the same random loss
L = Σ out ⊙ R + Σ h_n ⊙ R_h (+ Σ c_n ⊙ R_c for the LSTM):
  * the cells of `rnnlab.nn.cells` stepped over time with autograd;
  * the sequences of `rnnlab.nn.fused` (the hand-written BPTT of the fast path);
  * the layers `rnnlab.nn.RNN/LSTM/GRU`, impl "loop" and "fused", single layer, and with
    lengths and both directions, where each sequence is run through the reference on its own.
Outputs, final states and the gradients of every parameter, the input and the initial state are
compared.
"""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnnlab import nn as rnn_nn
from rnnlab.nn import fused
from rnnlab.reference import (
    gru_backward,
    gru_forward,
    init_params,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)

T, B, I, H = 5, 3, 4, 6
TOL = {"rtol": 1e-10, "atol": 1e-10}

# name -> (kind, the option shared by the reference, the cell and the layer)
CASES = {
    "rnn-tanh": ("rnn", {"nonlinearity": "tanh"}),
    "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm": ("lstm", {"peephole": False}),
    "lstm-peephole": ("lstm", {"peephole": True}),
    "gru-full": ("gru", {"variant": "full"}),
    "gru-minimal": ("gru", {"variant": "minimal"}),
}
CELLS = {"rnn": rnn_nn.RNNCell, "lstm": rnn_nn.LSTMCell, "gru": rnn_nn.GRUCell}
LAYERS = {"rnn": rnn_nn.RNN, "lstm": rnn_nn.LSTM, "gru": rnn_nn.GRU}
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")


def reference(name, x, h0, c0, params, dhs, dc_T=None):
    """Forward and backward of the NumPy reference: (hs, cs or None, grads)."""
    kind, options = CASES[name]
    if kind == "lstm":
        hs, cs, cache = lstm_forward(x, h0, c0, params, **options)
        return hs, cs, lstm_backward(dhs, cache, dc_T=dc_T)
    if kind == "rnn":
        hs, cache = rnn_forward(x, h0, params, **options)
        return hs, None, rnn_backward(dhs, cache)
    hs, cache = gru_forward(x, h0, params, **options)
    return hs, None, gru_backward(dhs, cache)


def make_problem(name, bias=True, seed=0):
    """Parameters (float64, scaled past the init range so gates saturate), inputs and targets."""
    kind, options = CASES[name]
    rng = np.random.default_rng(seed)
    shape_options = {k: v for k, v in options.items() if k != "nonlinearity"}
    params = init_params(kind, I, H, rng, bias=bias, **shape_options)
    params = {k: 2.0 * v for k, v in params.items()}
    arrays = {"x": rng.standard_normal((T, B, I)), "h0": rng.standard_normal((B, H))}
    if kind == "lstm":
        arrays["c0"] = rng.standard_normal((B, H))
    targets = {k: rng.standard_normal((B, H)) for k in ("h_n", "c_n")}
    targets["out"] = rng.standard_normal((T, B, H))
    return params, arrays, targets


def leaves(arrays):
    return {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}


def assert_close(actual, expected, what):
    np.testing.assert_allclose(actual.detach().numpy(), expected, **TOL, err_msg=what)


def run_reference_single(name, params, arrays, targets):
    """The reference under L = Σ out ⊙ R + Σ h_n ⊙ R_h (+ Σ c_n ⊙ R_c); h_n = hs[-1]."""
    dhs = targets["out"].copy()
    dhs[-1] += targets["h_n"]
    dc_T = targets["c_n"] if CASES[name][0] == "lstm" else None
    return reference(name, arrays["x"], arrays["h0"], arrays.get("c0"), params, dhs, dc_T)


def torch_loss(out, h_n, c_n, targets):
    loss = (out * torch.from_numpy(targets["out"])).sum()
    loss = loss + (h_n * torch.from_numpy(targets["h_n"])).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.from_numpy(targets["c_n"])).sum()
    return loss


@pytest.mark.parametrize("name", list(CASES))
def test_cell_stepped_over_time_matches_reference(name):
    kind, options = CASES[name]
    params, arrays, targets = make_problem(name)
    cell = CELLS[kind](I, H, **options).double()
    cell.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    t = leaves(arrays)

    state = (t["h0"], t["c0"]) if kind == "lstm" else t["h0"]
    hs, cs = [], []
    for x_t in t["x"].unbind(0):  # x_t (B, I)
        state = cell(x_t, state)
        hs.append(state[0] if kind == "lstm" else state)
        cs.append(state[1] if kind == "lstm" else None)
    out = torch.stack(hs)  # (T, B, H)
    torch_loss(out, hs[-1], cs[-1], targets).backward()

    ref_hs, ref_cs, grads = run_reference_single(name, params, arrays, targets)
    assert_close(out, ref_hs, "hs")
    if kind == "lstm":
        assert_close(torch.stack(cs), ref_cs, "cs")
    for key, p in cell.named_parameters():
        assert_close(p.grad, grads[key], key)
    for key, leaf in t.items():
        assert_close(leaf.grad, grads[key], key)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("name", list(CASES))
def test_fused_sequence_matches_reference(name, bias):
    """The hand-written BPTT of `nn.fused`, called directly (the layers may take torch's kernel)."""
    kind, options = CASES[name]
    params, arrays, targets = make_problem(name, bias=bias)
    p = leaves(params)
    t = leaves(arrays)
    x_proj = F.linear(t["x"], p["weight_ih"], p.get("bias_ih"))  # (T, B, G*H)
    w_hh, b_hh = p["weight_hh"], p.get("bias_hh")
    c_n = None
    if kind == "lstm":
        peepholes = tuple(p[k] for k in PEEPHOLES) if options["peephole"] else None
        out, h_n, c_n = fused.lstm_sequence(x_proj, t["h0"], t["c0"], w_hh, b_hh, peepholes)
    elif kind == "gru":
        out, h_n = fused.gru_sequence(x_proj, t["h0"], w_hh, b_hh, **options)
    else:
        out, h_n = fused.rnn_sequence(x_proj, t["h0"], w_hh, b_hh, **options)
    torch_loss(out, h_n, c_n, targets).backward()

    ref_hs, ref_cs, grads = run_reference_single(name, params, arrays, targets)
    assert_close(out, ref_hs, "out")
    assert_close(h_n, ref_hs[-1], "h_n")
    if kind == "lstm":
        assert_close(c_n, ref_cs[-1], "c_n")
    for key, leaf in [*p.items(), *t.items()]:
        assert_close(leaf.grad, grads[key], key)


def make_layer(name, impl, bias=True, bidirectional=False):
    kind, options = CASES[name]
    return LAYERS[kind](
        I, H, num_layers=1, bias=bias, bidirectional=bidirectional, impl=impl, **options
    ).double()


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("impl", ["loop", "fused"])
@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_reference(name, impl, bias):
    kind, _ = CASES[name]
    params, arrays, targets = make_problem(name, bias=bias)
    layer = make_layer(name, impl, bias)
    layer.load_state_dict({k + "_l0": torch.from_numpy(v) for k, v in params.items()})
    t = leaves(arrays)

    state = (t["h0"][None], t["c0"][None]) if kind == "lstm" else t["h0"][None]  # (1, B, H)
    out, state = layer(t["x"], state)
    h_n, c_n = state if kind == "lstm" else (state, None)
    assert out.shape == (T, B, H) and h_n.shape == (1, B, H)
    torch_loss(out, h_n[0], None if c_n is None else c_n[0], targets).backward()

    ref_hs, ref_cs, grads = run_reference_single(name, params, arrays, targets)
    assert_close(out, ref_hs, "out")
    assert_close(h_n[0], ref_hs[-1], "h_n")
    if kind == "lstm":
        assert_close(c_n[0], ref_cs[-1], "c_n")
    for key, p in layer.named_parameters():
        assert_close(p.grad, grads[key.removesuffix("_l0")], key)
    for key, leaf in t.items():
        assert_close(leaf.grad, grads[key], key)


@pytest.mark.parametrize("impl", ["loop", "fused"])
@pytest.mark.parametrize("name", list(CASES))
def test_bidirectional_layer_with_lengths_matches_reference_per_sequence(name, impl):
    """Padding is invisible: each sequence gives what the reference gives on it alone.

    The forward direction is the reference on x[:L]; the reverse direction is the reference on
    x[:L] read backwards, with the `_l0_reverse` weights. Outputs past L must be zero and get
    no gradient; the loss is a sum over sequences, so the gradients are the per-sequence sums.
    """
    kind, _ = CASES[name]
    lengths = [T, 2, T - 1]
    params, arrays, targets = make_problem(name)
    params_rev, _, _ = make_problem(name, seed=1)
    rng = np.random.default_rng(2)
    targets["out"] = rng.standard_normal((T, B, 2 * H))
    targets["h_n"] = rng.standard_normal((2, B, H))
    targets["c_n"] = rng.standard_normal((2, B, H))
    states = {k: np.stack([v, rng.standard_normal((B, H))]) for k, v in arrays.items() if k != "x"}

    layer = make_layer(name, impl, bidirectional=True)
    weights = {k + "_l0": v for k, v in params.items()}
    weights |= {k + "_l0_reverse": v for k, v in params_rev.items()}
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    x = torch.tensor(arrays["x"], requires_grad=True)
    s = leaves(states)  # h0 [, c0]: (2, B, H)
    out, state = layer(x, (s["h0"], s["c0"]) if kind == "lstm" else s["h0"], lengths=lengths)
    h_n, c_n = state if kind == "lstm" else (state, None)
    torch_loss(out, h_n, c_n, targets).backward()

    expected_grads = {k: np.zeros_like(v) for k, v in weights.items()}
    expected_dx = np.zeros_like(arrays["x"])
    for b, L in enumerate(lengths):
        assert_close(out[L:, b], np.zeros((T - L, 2 * H)), f"out past the end of sequence {b}")
        for d, (suffix, p, order) in enumerate(
            [("_l0", params, slice(None)), ("_l0_reverse", params_rev, slice(None, None, -1))]
        ):
            x_b = arrays["x"][:L, b : b + 1][order]  # (L, 1, I), read in this direction's order
            dhs = targets["out"][:L, b : b + 1, d * H : (d + 1) * H][order].copy()  # (L, 1, H)
            dhs[-1] += targets["h_n"][d, b]
            start = {k: v[d, b : b + 1] for k, v in states.items()}  # (1, H)
            dc_T = targets["c_n"][d, b : b + 1] if kind == "lstm" else None
            hs, cs, grads = reference(name, x_b, start["h0"], start.get("c0"), p, dhs, dc_T)
            assert_close(out[:L, b : b + 1, d * H : (d + 1) * H], hs[order], f"out {b}{suffix}")
            assert_close(h_n[d, b], hs[-1, 0], f"h_n {b}{suffix}")
            if kind == "lstm":
                assert_close(c_n[d, b], cs[-1, 0], f"c_n {b}{suffix}")
                assert_close(s["c0"].grad[d, b], grads["c0"][0], f"c0 {b}{suffix}")
            assert_close(s["h0"].grad[d, b], grads["h0"][0], f"h0 {b}{suffix}")
            expected_dx[:L, b : b + 1] += grads["x"][order]
            for key in p:
                expected_grads[key + suffix] += grads[key]
    assert_close(x.grad, expected_dx, "x")
    for key, param in layer.named_parameters():
        assert_close(param.grad, expected_grads[key], key)
