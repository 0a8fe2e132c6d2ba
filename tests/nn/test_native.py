"""The compiled time loops (rnnlab.nn.native) against fused.py's Python loops, and the fallback
when they cannot be built.

test_fused.py already holds both paths to the textbook cells; here they meet each other on what
only the compiled path does (oneDNN-packed products of wide layers), on random shapes, and in the
layers' dispatch. In CI (RNNLAB_REQUIRE_NATIVE=1) a failed build fails these tests.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.nn.test_fused import KINDS, leaves, make_inputs, mask_from, results_and_grads
from tests.nn.test_fused import fused as run_fused

from rnnlab import nn as rn
from rnnlab.nn import fused, native

pytestmark = pytest.mark.skipif(
    os.environ.get("RNNLAB_REQUIRE_NATIVE") != "1" and not native.available(),
    reason="the C++ recurrences could not be built here")


def both_paths(kind, inputs, mask):
    with native.use_native(True):
        compiled = results_and_grads(run_fused, kind, inputs, mask)
    with native.use_native(False):
        python = results_and_grads(run_fused, kind, inputs, mask)
    return compiled, python


def test_builds_where_required():
    assert native.available(), "RNNLAB_REQUIRE_NATIVE=1 but the C++ recurrences did not build"


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), T=st.integers(1, 9), H=st.integers(1, 19),
       data=st.data())
def test_equals_python_loops_float64(kind, T, H, data):
    """H up to 19 crosses the 4-lane vectors of float64 with every remainder."""
    lengths = data.draw(st.lists(st.integers(1, T), min_size=1, max_size=5), label="lengths")
    masked = data.draw(st.booleans(), label="masked")
    inputs = make_inputs(kind, T, len(lengths), H, bias=data.draw(st.booleans(), label="bias"))
    (got, got_grads), (want, want_grads) = both_paths(
        kind, inputs, mask_from(lengths, T) if masked else None)
    for g, w in zip(got + got_grads, want + want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("start", ["zero", "random"])
@pytest.mark.parametrize("state_grad", [True, False], ids=["dh0", "no-dh0"])
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_zero_start_and_unwanted_state_gradient(kind, start, state_grad, masked):
    """The compiled loops skip the first step's product where h0 is zero and the last step's
    where h0 needs no gradient: same numbers as the Python loops, which skip neither."""
    T, B, H = 6, 4, 5
    inputs = make_inputs(kind, T, B, H)
    for name in ("h0", "c0"):
        if name in inputs:
            value = inputs[name].detach() * (start == "random")
            inputs[name] = value.requires_grad_(state_grad)
    mask = mask_from([6, 1, 4, 6], T) if masked else None
    wanted = [v for v in leaves(inputs) if v.requires_grad]
    results = {}
    for compiled in (True, False):
        with native.use_native(compiled):
            outputs = run_fused(kind, inputs, mask)
            gen = torch.Generator().manual_seed(1)
            loss = sum((r * torch.randn(r.shape, generator=gen, dtype=r.dtype)).sum()
                       for r in outputs)
            results[compiled] = [r.detach() for r in outputs] + list(
                torch.autograd.grad(loss, wanted))
    for g, w in zip(results[True], results[False], strict=True):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_packed_wide_layers_float32(kind, masked, monkeypatch):
    """A wide float32 layer over enough steps takes oneDNN's packed products in both directions
    (where the CPU's vendor or the loops' own step product leaves packing off, it is switched on
    here: the path must hold)."""
    monkeypatch.setattr(fused, "NATIVE_MIN_HIDDEN_TO_PACK", fused.NATIVE_MIN_HIDDEN_TO_PACK or 384)
    monkeypatch.setattr(fused, "_step_product_runs", lambda weight, batch: False)
    T, B, H = fused.MIN_STEPS_TO_PACK, 3, fused.NATIVE_MIN_HIDDEN_TO_PACK
    assert fused._native_packed(torch.zeros(KINDS[kind][0] * H, H), T, B) is not None
    inputs = make_inputs(kind, T, B, H, dtype=torch.float32)
    for name in ("weight_hh",):  # keep the recurrence contractive: |W h| stays O(1)
        inputs[name] = (inputs[name].detach() / H ** 0.5).requires_grad_()
    (got, got_grads), (want, want_grads) = both_paths(
        kind, inputs, mask_from([T, T - 5, 1], T, torch.float32) if masked else None)
    for g, w in zip(got + got_grads, want + want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("cls,kwargs", [(rn.GRU, {}), (rn.GRU, {"variant": "minimal"}),
                                        (rn.RNN, {}), (rn.RNN, {"nonlinearity": "relu"})])
def test_layers_take_compiled_loops_at_any_size(cls, kwargs):
    """With the loops compiled, GRU and RNN layers run them on the CPU below the Python loops'
    break-even size too (own_bptt_min_hidden), with torch's numbers."""
    torch.manual_seed(0)
    layer = cls(5, 7, num_layers=2, bidirectional=True, dtype=torch.float64, **kwargs)
    assert layer.hidden_size < layer.own_bptt_min_hidden and layer._own_bptt(torch.zeros(1))
    x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
    out, h = layer(x)
    if kwargs.get("variant") == "minimal":
        return  # torch has no minimal GRU: test_fused holds it to the cells
    reference = getattr(torch.nn, cls.__name__)(5, 7, num_layers=2, bidirectional=True,
                                                dtype=torch.float64, **kwargs)
    reference.load_state_dict(layer.state_dict())
    x_ref = x.detach().clone().requires_grad_()
    out_ref, h_ref = reference(x_ref)
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(h, h_ref, atol=1e-12, rtol=1e-12)
    (out.sum() + h.sum()).backward()
    (out_ref.sum() + h_ref.sum()).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-12, rtol=1e-12)
    for (name, p), p_ref in zip(layer.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-12, rtol=1e-12, msg=name)


def test_failed_build_falls_back_and_says_so_once(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions\nmore detail")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    native._build.cache_clear()
    try:
        x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
        h0 = torch.zeros(2, 3, dtype=torch.float64)
        w = torch.randn(3, 3, dtype=torch.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert native.extension_for(x) is None
            out, _ = fused.rnn_sequence(x, h0, w, None)  # the Python loop
            assert native.extension_for(x) is None
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert messages == ["rnnlab: the C++ recurrences could not be built (Ninja is required "
                            "to load C++ extensions); the Python loops run instead (same "
                            "numbers, slower; a C++ compiler and `pip install 'rnnlab[native]'` "
                            "enable them)"]
        with native.use_native(False):
            want, _ = fused.rnn_sequence(x, h0, w, None)
        torch.testing.assert_close(out, want)
    finally:
        native._build.cache_clear()  # the next test builds (loads) the real extension again


def test_switched_off_or_not_applicable():
    x = torch.zeros(2, 2, 3)
    with native.use_native(False):
        assert native.extension_for(x) is None
    assert native.extension_for(x.half()) is None
    assert native.extension_for(torch.zeros(2, 2, 3, device="meta")) is None


@pytest.mark.parametrize("cls", [rn.GRU, rn.RNN])
@pytest.mark.parametrize("steps", [7, 9], ids=["padded-to-longest", "padded-beyond"])
def test_batches_with_lengths_train_through_the_masked_loop(cls, steps, monkeypatch):
    """In training, GRU/RNN batches with lengths take the compiled masked loop (not torch's
    packed kernel) and give torch's packed numbers: zeros past each end, each sequence's own
    final state, the reverse direction from each sequence's own end."""
    torch.manual_seed(1)
    layer = cls(4, 6, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    reference = getattr(torch.nn, cls.__name__)(4, 6, num_layers=2, bidirectional=True,
                                                batch_first=True, dtype=torch.float64)
    reference.load_state_dict(layer.state_dict())
    lengths = torch.tensor([5, 2, 7, 1])
    x = torch.randn(4, steps, 4, dtype=torch.float64, requires_grad=True)  # 9: no row runs at 8
    assert layer._own_bptt(x, lengths)
    calls = []
    monkeypatch.setattr(layer, "_run_torch_float32", lambda *a: calls.append(a))
    out, h = layer(x, lengths=lengths)
    assert not calls  # torch's kernel was not called
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    out_ref, h_ref = reference(packed)
    out_ref = torch.nn.utils.rnn.pad_packed_sequence(out_ref, batch_first=True,
                                                     total_length=steps)[0]
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(h, h_ref, atol=1e-12, rtol=1e-12)
    grads = torch.autograd.grad(out.square().sum() + h.sum(), [x, *layer.parameters()])
    grads_ref = torch.autograd.grad(out_ref.square().sum() + h_ref.sum(),
                                    [x, *reference.parameters()])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=1e-12)
    with torch.no_grad():
        assert not layer._own_bptt(x, lengths)  # inference: torch's packed kernel
    layer.lengths_kernel = "packed"
    assert not layer._own_bptt(x, lengths)


@pytest.mark.parametrize("kind", ["lstm", "lstm-peephole", "gru-full", "rnn-tanh"])
def test_loops_let_other_threads_run(kind):
    """The compiled loops release the GIL while they run, as torch's ops do: another Python
    thread (a server's event loop) keeps running beside a forward and backward instead of
    waiting for each loop to end. Held, the main thread would stall for a whole loop call."""
    with native.use_native(True):
        steps = 256
        while True:  # long enough that a stall of one loop call would stand out
            inputs = make_inputs(kind, steps, 8, 64, dtype=torch.float32)
            started = time.perf_counter()
            results_and_grads(run_fused, kind, inputs, None)
            alone = time.perf_counter() - started
            if alone >= 0.2:
                break
            steps *= 2
        errors = []

        def work():
            try:
                results_and_grads(run_fused, kind, inputs, None)
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        ticks = [time.perf_counter()]
        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            ticks.append(time.perf_counter())
        worker.join()
    assert not errors
    longest_stall = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
    assert longest_stall < alone / 5, (longest_stall, alone)


@pytest.mark.parametrize("cls,kwargs", [(rn.LSTM, {"peephole": True}), (rn.GRU, {}),
                                        (rn.RNN, {})])
def test_nan_stays_nan_in_float32(cls, kwargs):
    """The float32 loops' cheaper activations (vectors.h) keep a NaN a NaN, so a diverged run
    reads a NaN loss and is stopped, rather than training on finite garbage."""
    layer = cls(4, 8, impl="fused", **kwargs)
    x = torch.randn(5, 2, 4)
    x[2, 1, 0] = float("nan")
    out, _ = layer(x)
    assert out[2:, 1].isnan().all() and not out[:, 0].isnan().any()
