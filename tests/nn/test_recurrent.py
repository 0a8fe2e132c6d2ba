"""rnnlab layers against torch.nn on the same state_dict, loop against fused, and bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab.nn as rn
from rnnlab.nn import recurrent
from rnnlab.nn.factory import make_recurrent

KINDS = ("LSTM", "GRU", "RNN")


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _run_torch(ref, x, lengths, state, batch_first):
    if lengths is None:
        return ref(x, state)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, final = ref(packed, state)
    steps = x.shape[1 if batch_first else 0]
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=steps)
    return out, final


def _compare(kind, layers, bidirectional, batch_first, with_lengths, impl, dtype, tol,
             with_state=False, nonlinearity="tanh"):
    torch.manual_seed(0)
    extra = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
    ref = getattr(torch.nn, kind)(5, 4, num_layers=layers, bidirectional=bidirectional,
                                  batch_first=batch_first, **extra).to(dtype)
    ours = getattr(rn, kind)(5, 4, num_layers=layers, bidirectional=bidirectional,
                             batch_first=batch_first, impl=impl, **extra).to(dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)
    steps, batch = 6, 3
    shape = (batch, steps, 5) if batch_first else (steps, batch, 5)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([6, 2, 4]) if with_lengths else None
    state = None
    if with_state:
        h = torch.randn(layers * (2 if bidirectional else 1), batch, 4, dtype=dtype)
        state = (h, torch.randn_like(h)) if kind == "LSTM" else h
    out_ref, final_ref = _run_torch(ref, x, lengths, state, batch_first)
    out, final = ours(x, state, lengths=lengths)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, atol=tol, rtol=tol)
    for a, b in zip(_as_tuple(final), _as_tuple(final_ref), strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    # A loss that reaches every output and every final state.
    def loss(o, f):
        return (o ** 2).sum() + sum((s ** 3).sum() for s in _as_tuple(f))

    grads_ref = torch.autograd.grad(loss(out_ref, final_ref), [x, *ref.parameters()])
    grads = torch.autograd.grad(loss(out, final), [x, *ours.parameters()])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize(
    "kind,layers,bidirectional,batch_first,with_lengths",
    list(itertools.product(KINDS, (1, 2, 3), (False, True), (False, True), (False, True))),
)
@pytest.mark.parametrize("impl", ["loop", "fused"])
def test_matches_torch_float64(kind, layers, bidirectional, batch_first, with_lengths, impl):
    _compare(kind, layers, bidirectional, batch_first, with_lengths, impl, torch.float64, 1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["loop", "fused"])
def test_matches_torch_float32_with_state(kind, impl):
    _compare(kind, 2, True, True, True, impl, torch.float32, 1e-5, with_state=True)


def test_relu_rnn_matches_torch():
    _compare("RNN", 2, True, False, True, "loop", torch.float64, 1e-10, nonlinearity="relu")


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trips_back_to_torch(kind):
    ours = getattr(rn, kind)(3, 5, num_layers=2, bidirectional=True)
    ref = getattr(torch.nn, kind)(3, 5, num_layers=2, bidirectional=True)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-6, rtol=1e-6)


def test_cells_load_torch_cell_state_dicts():
    for ours, ref, state in (
        (rn.LSTMCell(3, 4), torch.nn.LSTMCell(3, 4),
         lambda: (torch.randn(2, 4), torch.randn(2, 4))),
        (rn.GRUCell(3, 4), torch.nn.GRUCell(3, 4), lambda: torch.randn(2, 4)),
        (rn.RNNCell(3, 4), torch.nn.RNNCell(3, 4), lambda: torch.randn(2, 4)),
    ):
        ours.load_state_dict(ref.state_dict(), strict=True)
        x, s = torch.randn(2, 3), state()
        for a, b in zip(_as_tuple(ours(x, s)), _as_tuple(ref(x, s)), strict=True):
            torch.testing.assert_close(a, b)


def test_packed_sequence_in_and_out():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(3, 4, bidirectional=True)
    ours = rn.LSTM(3, 4, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 3, 3)
    packed = pack_padded_sequence(x, torch.tensor([2, 5, 3]), enforce_sorted=False)
    out_ref, (h_ref, c_ref) = ref(packed)
    out, (h, c) = ours(packed)
    assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(out.data, out_ref.data)
    torch.testing.assert_close(out.batch_sizes, out_ref.batch_sizes)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


@pytest.mark.parametrize("cell", ["lstm-peephole", "gru-minimal", "lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_loop_and_fused_agree(cell, bidirectional):
    torch.manual_seed(2)
    loop = make_recurrent(cell, 4, 3, 2, bidirectional=bidirectional, impl="loop")
    fast = make_recurrent(cell, 4, 3, 2, bidirectional=bidirectional, impl="fused")
    loop.double()
    fast.double()
    fast.load_state_dict(loop.state_dict(), strict=True)
    x = torch.randn(7, 3, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([7, 1, 4])
    out_a, state_a = loop(x, lengths=lengths)
    out_b, state_b = fast(x, lengths=lengths)
    torch.testing.assert_close(out_a, out_b, atol=1e-10, rtol=1e-10)
    for a, b in zip(_as_tuple(state_a), _as_tuple(state_b), strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    ga = torch.autograd.grad(out_a.sum() + _as_tuple(state_a)[0].sum(), [x, *loop.parameters()])
    gb = torch.autograd.grad(out_b.sum() + _as_tuple(state_b)[0].sum(), [x, *fast.parameters()])
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("impl", ["loop", "fused"])
def test_padding_is_invisible(impl):
    """A short sequence gives the same outputs and state alone as inside a padded batch."""
    torch.manual_seed(3)
    layer = rn.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True, impl=impl)
    x = torch.randn(6, 2, 3)
    out, (h, c) = layer(x, lengths=torch.tensor([6, 3]))
    alone, (h1, c1) = layer(x[:3, 1:2])
    torch.testing.assert_close(out[:3, 1:2], alone)
    assert torch.all(out[3:, 1] == 0)
    torch.testing.assert_close(h[:, 1:2], h1)
    torch.testing.assert_close(c[:, 1:2], c1)


def test_dropout_between_layers_only_and_off_in_eval():
    torch.manual_seed(4)
    layer = rn.LSTM(3, 4, num_layers=2, dropout=0.5, impl="loop")
    x = torch.randn(5, 2, 3)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    single = rn.LSTM(3, 4, num_layers=1, dropout=0.5, impl="loop").train()
    torch.testing.assert_close(single(x)[0], single(x)[0])  # no dropout after the last layer
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])


def test_step_matches_forward():
    torch.manual_seed(5)
    for cell in ("lstm", "lstm-peephole", "gru", "gru-minimal", "rnn"):
        layer = make_recurrent(cell, 3, 4, 2).eval()
        x = torch.randn(5, 2, 3)
        out, final = layer(x)
        state = None
        for t in range(5):
            h, state = layer.step(x[t], state)
            torch.testing.assert_close(h, out[t])
        for a, b in zip(_as_tuple(state), _as_tuple(final), strict=True):
            torch.testing.assert_close(a, b)


def test_seeded_runs_are_deterministic():
    def run():
        torch.manual_seed(7)
        layer = rn.LSTM(3, 4, num_layers=2, dropout=0.3, peephole=True)
        out, _ = layer(torch.randn(6, 2, 3))
        out.sum().backward()
        return out.detach(), layer.weight_hh_l0.grad

    (a, ga), (b, gb) = run(), run()
    assert torch.equal(a, b) and torch.equal(ga, gb)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: m(torch.randn(5, 2, 3, 1)), "3-D"),
        (lambda m: m(torch.randn(5, 2, 4)), "feature size 3"),
        (lambda m: m(torch.randn(0, 2, 3)), "length 0"),
        (lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4)), "tuple"),
        (lambda m: m(torch.randn(5, 2, 3), (torch.randn(2, 2, 4),) * 2), "shape"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([[5, 5]])), "1-D"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([6, 5])), "only 5"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([0, 5])), ">= 1"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([5, 5, 5])), "3 entries"),
    ],
)
def test_bad_input_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call(rn.LSTM(3, 4))


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["lstm", "lstm-peephole", "gru", "gru-minimal", "rnn"]),
    steps=st.integers(1, 6), batch=st.integers(1, 4), hidden=st.integers(1, 5),
    bidirectional=st.booleans(), data=st.data(),
)
def test_property_shapes_and_padding(kind, steps, batch, hidden, bidirectional, data):
    lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    layer = make_recurrent(kind, 2, hidden, 2, bidirectional=bidirectional)
    out, state = layer(torch.randn(steps, batch, 2), lengths=torch.tensor(lengths))
    directions = 2 if bidirectional else 1
    assert out.shape == (steps, batch, directions * hidden)
    for s in _as_tuple(state):
        assert s.shape == (2 * directions, batch, hidden)
    for b, length in enumerate(lengths):
        assert torch.all(out[length:, b] == 0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_by_layer_dropout_path_equals_the_kernels_own(monkeypatch, cell, bidirectional):
    """The path CUDA takes (layers one by one, torch's dropout between them) against torch's
    multi-layer kernel on the CPU, whose dropout is the same torch dropout: same seed, same
    numbers (outputs, final states and input gradients)."""
    torch.manual_seed(0)
    layer = make_recurrent(cell, 5, 7, num_layers=3, dropout=0.4, bidirectional=bidirectional)
    x = torch.randn(6, 3, 5, requires_grad=True)

    def run():
        torch.manual_seed(1)
        out, state = layer(x)
        states = state if isinstance(state, tuple) else (state,)
        (grad,) = torch.autograd.grad(out.sum() + sum(s.sum() for s in states), x)
        return out, states, grad

    kernel = run()
    monkeypatch.setattr(recurrent, "_dropout_outside_kernel", lambda x: True)
    layerwise = run()
    torch.testing.assert_close(layerwise[0], kernel[0], rtol=0, atol=1e-6)
    for a, b in zip(layerwise[1], kernel[1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(layerwise[2], kernel[2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_wide_gru_and_rnn_take_the_own_bptt_and_match_torch(kind, monkeypatch):
    """From `own_bptt_min_hidden` on, GRU and RNN run fused.py on the CPU: same numbers as torch."""
    torch.manual_seed(0)
    hidden = getattr(rn, kind).own_bptt_min_hidden
    ref = getattr(torch.nn, kind)(3, hidden, num_layers=2, bidirectional=True).double()
    ours = getattr(rn, kind)(3, hidden, num_layers=2, bidirectional=True).double()
    ours.load_state_dict(ref.state_dict())
    calls = []
    real = ours._run_fused
    monkeypatch.setattr(ours, "_run_fused", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(4, 2, hidden, dtype=torch.float64)
    (out, h_n), (out_ref, h_ref) = ours(x, h), ref(x, h)
    assert calls
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(h_n, h_ref, rtol=0, atol=1e-10)
    grads = torch.autograd.grad((out ** 2).sum() + h_n.sum(), [x, *ours.parameters()])
    grads_ref = torch.autograd.grad((out_ref ** 2).sum() + h_ref.sum(), [x, *ref.parameters()])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
