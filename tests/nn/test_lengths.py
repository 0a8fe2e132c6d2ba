"""Batches with lengths through the padded kernel (rnnlab.nn.lengths) equal torch's packed path."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab.nn as rn
from rnnlab.nn import lengths as lengths_path
from rnnlab.nn import native


def _tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _everything(layer, x, state, lengths, kernel):
    """Outputs, final states and the gradients of a loss reaching all of them, on one path."""
    layer.lengths_kernel = kernel
    out, final = layer(x, state, lengths=lengths)
    loss = (out ** 2).sum() + sum((s ** 3).sum() for s in _tuple(final))
    states = () if state is None else _tuple(state)
    inputs = [x, *layer.parameters(), *states]
    return [out, *_tuple(final), *torch.autograd.grad(loss, inputs)]


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["LSTM", "GRU", "RNN"]), layers=st.integers(1, 2),
       bidirectional=st.booleans(), batch_first=st.booleans(), with_state=st.booleans(),
       steps=st.integers(1, 9), data=st.data())
def test_padded_path_equals_packed_path_float64(kind, layers, bidirectional, batch_first,
                                                 with_state, steps, data):
    batch = data.draw(st.integers(1, 7))
    lengths = torch.tensor(data.draw(st.lists(st.integers(1, steps), min_size=batch,
                                              max_size=batch)))
    torch.manual_seed(0)
    layer = getattr(rn, kind)(3, 4, num_layers=layers, bidirectional=bidirectional,
                              batch_first=batch_first).double()
    shape = (batch, steps, 3) if batch_first else (steps, batch, 3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    state = None
    if with_state:
        h = torch.randn(layers * (2 if bidirectional else 1), batch, 4, dtype=torch.float64,
                        requires_grad=True)
        state = (h, torch.randn_like(h).requires_grad_()) if kind == "LSTM" else h
    packed = _everything(layer, x, state, lengths, "packed")
    padded = _everything(layer, x, state, lengths, "padded")
    assert len(packed) == len(padded)
    for a, b in zip(padded, packed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_auto_takes_the_padded_path_for_float32_and_matches_torch(kind, monkeypatch):
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(5, 6, num_layers=2, bidirectional=True)
    ours = getattr(rn, kind)(5, 6, num_layers=2, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    monkeypatch.setattr(ours, "padded_lengths_min_hidden", 6)  # GRU, RNN: 256 by default
    # GRU, RNN: without the compiled loops (which take their batches with lengths when built)
    monkeypatch.setattr(native, "_enabled", False)
    calls = []
    real_run = lengths_path.run
    monkeypatch.setattr(lengths_path, "run", lambda *a: calls.append(1) or real_run(*a))
    x = torch.randn(40, 6, 5, requires_grad=True)  # long padding: c must stay exact through it
    lengths = torch.tensor([40, 3, 17, 17, 1, 29])
    out, final = ours(x, lengths=lengths)
    assert calls, "impl='auto' did not take the padded path for float32 on the CPU"
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out_ref, final_ref = ref(packed)
    out_ref = pad_packed_sequence(out_ref, total_length=40)[0]
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(_tuple(final), _tuple(final_ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.sum() + sum(s.sum() for s in _tuple(final)),
                                [x, *ours.parameters()])
    grads_ref = torch.autograd.grad(out_ref.sum() + sum(s.sum() for s in _tuple(final_ref)),
                                    [x, *ref.parameters()])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind,hidden,grad,padded", [
    ("LSTM", 6, True, True), ("LSTM", 6, False, False), ("GRU", 6, True, False),
    ("GRU", 256, True, True), ("RNN", 255, True, False), ("RNN", 256, True, True),
])
def test_auto_choice(kind, hidden, grad, padded):
    layer = getattr(rn, kind)(3, hidden)
    with torch.set_grad_enabled(grad):
        assert lengths_path.applies(layer, torch.randn(2, 2, 3)) == padded
        assert not lengths_path.applies(layer, torch.randn(2, 2, 3, dtype=torch.float64))


def test_packed_sequence_input_takes_it_too():
    torch.manual_seed(0)
    layer = rn.LSTM(3, 4, bidirectional=True).double()
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([7, 2, 5, 3]), enforce_sorted=False)
    layer.lengths_kernel = "packed"
    out_a, (h_a, c_a) = layer(packed)
    layer.lengths_kernel = "padded"
    out_b, (h_b, c_b) = layer(packed)
    torch.testing.assert_close(out_b.data, out_a.data, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_b, c_a, rtol=0, atol=1e-12)


def test_bad_lengths_kernel_value_is_refused():
    layer = rn.GRU(3, 4)
    layer.lengths_kernel = "fast"
    with pytest.raises(ValueError, match="lengths_kernel"):
        layer(torch.randn(5, 2, 3), lengths=torch.tensor([5, 2]))


def _cost(lengths, bounds):
    return sum(lengths_path.CALL_COST + lengths[i] * (lengths_path.STEP_COST + j - i)
               for i, j in zip(bounds[:-1], bounds[1:], strict=True))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=8))
def test_group_bounds_are_optimal_by_brute_force(lengths):
    lengths = sorted(lengths, reverse=True)
    n = len(lengths)
    bounds = lengths_path.group_bounds(lengths)
    assert bounds[0] == 0 and bounds[-1] == n and bounds == sorted(set(bounds))
    best = min(_cost(lengths, [0, *cuts, n])
               for k in range(n) for cuts in itertools.combinations(range(1, n), k))
    assert _cost(lengths, bounds) == pytest.approx(best)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=6), features=st.integers(1, 5))
def test_reverse_within_lengths_flips_each_sequence_and_leaves_padding(lengths, features):
    """Against a flip of each sequence on its own; padding stays where it is; the gradient goes
    back to where each value came from."""
    steps, batch = max(lengths), len(lengths)
    x = torch.randn(steps, batch, features, dtype=torch.float64, requires_grad=True)
    rows = lengths_path.reversal_rows(torch.tensor(lengths), steps)
    got = lengths_path.reverse_within_lengths(x, rows)
    want = x.detach().clone()
    for b, length in enumerate(lengths):
        want[:length, b] = x.detach()[:length, b].flip(0)
    assert torch.equal(got.detach(), want)
    weights = torch.randn_like(got)
    (got * weights).sum().backward()
    assert torch.equal(x.grad, lengths_path.reverse_within_lengths(weights, rows))
