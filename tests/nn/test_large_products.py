"""The large products around the compiled loops (an input projection of all steps, its gradient,
dW over all T*B rows) on either library: torch.mm (MKL) or oneDNN's linear, which native.py
picks on non-Intel CPUs with AVX-512, where dW runs on the step product's own kernel instead.
Whichever this machine picks, all are tested here. The oracle is a float64 product of the same
float32 numbers.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.nn.test_fused import KINDS, make_inputs, mask_from
from tests.nn.test_step_product import results_and_grads

from rnnlab import nn as rn
from rnnlab.nn import native

# (oneDNN on, its least depth; dW on the kernel, from this width of x): oneDNN from depth 96
# with malloc's defaults, from 1 where malloc keeps freed memory (as `rnnlab train` has it); dW
# on the kernel at every width, so that the small layers below take it too
LIBRARIES = {"onednn": (True, 96, False, None), "onednn-any-depth": (True, 1, False, None),
             "torch.mm": (False, None, False, None), "kernel-dW": (True, 96, True, 1)}


def extension(library: str = "onednn"):
    if os.environ.get("RNNLAB_REQUIRE_NATIVE") != "1" and not native.available():
        pytest.skip("the C++ recurrences could not be built here")
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch build has no oneDNN")
    ext = native.extension_for(torch.zeros(1))
    if LIBRARIES[library][2] and not ext.step_product_applies(torch.zeros(4, 4), 4):
        pytest.skip("the step product's kernel needs an AVX-512 build")
    return ext


@contextmanager
def products_on(library: str):
    """The loops' large products as LIBRARIES[library] says, inside a block."""
    onednn, depth, kernel, width = LIBRARIES[library]
    with ExitStack() as stack:
        stack.enter_context(native.use_onednn_products(onednn, depth))
        stack.enter_context(native.use_kernel_weight_grads(kernel, width))
        yield


def close(got: torch.Tensor, want: torch.Tensor, depth: int) -> None:
    # float32 rounding of `depth` products of N(0, 1) numbers: about 1e-7 * sqrt(depth) each
    torch.testing.assert_close(got.double(), want, atol=2e-5 * depth ** 0.5, rtol=1e-5)


@pytest.mark.parametrize("library", list(LIBRARIES))
@settings(max_examples=30, deadline=None)
@given(steps=st.integers(1, 12), batch=st.integers(1, 20), inputs=st.integers(1, 300),
       width=st.integers(1, 400), seed=st.integers(0, 2**16))
def test_projection_and_its_gradient(library, steps, batch, inputs, width, seed):
    """x W^T over all steps, and d W back, for any shapes (both sides of every threshold)."""
    ext = extension(library)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, inputs, generator=gen)
    weight = torch.randn(width, inputs, generator=gen)
    d = torch.randn(steps, batch, width, generator=gen)
    with products_on(library):
        projected = ext.project(x, weight.t())
        back = ext.project(d, weight)
    close(projected, x.double() @ weight.double().t(), inputs)
    close(back, d.double() @ weight.double(), width)


@pytest.mark.parametrize("library", list(LIBRARIES))
@settings(max_examples=30, deadline=None)
@given(steps=st.integers(1, 12), batch=st.integers(1, 20), inputs=st.integers(1, 200),
       widths=st.lists(st.integers(1, 500), min_size=1, max_size=2), with_h0=st.booleans(),
       seed=st.integers(0, 2**16))
def test_weight_gradient(library, steps, batch, inputs, widths, with_h0, seed):
    """dW = d^T x over all T*B rows, d in one block or two (the full GRU's d_rz, d_hn), x the
    layer's inputs or its states shifted by one step behind h0; d narrower or wider than x
    (the two orientations of the product)."""
    ext = extension(library)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, inputs, generator=gen)
    blocks = [torch.randn(steps, batch, n, generator=gen) for n in widths]
    h0 = torch.randn(batch, inputs, generator=gen) if with_h0 else None
    with products_on(library):
        got = ext.weight_grad(blocks, x, h0)
    rows = torch.cat([h0[None], x[:-1]]) if with_h0 else x
    d = torch.cat(blocks, -1).double().reshape(-1, sum(widths))
    close(got, d.t() @ rows.double().reshape(-1, inputs), steps * batch)


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_loops_match_float64(library, kind, masked):
    """Every loop in float32 with its large products on either library, with and without
    lengths: outputs and all gradients as the float64 Python loops give them."""
    extension(library)
    T, B, H = 9, 6, 40
    inputs = make_inputs(kind, T, B, H, dtype=torch.float64)
    with torch.no_grad():
        inputs["weight_hh"].mul_(H ** -0.5)
    mask64 = mask_from([T - (b * 4) % T for b in range(B)], T) if masked else None
    with native.use_native(False):
        want, want_grads = results_and_grads(kind, inputs, mask64)
    single = {name: None if value is None else (
        tuple(v.detach().float().requires_grad_() for v in value) if isinstance(value, tuple)
        else value.detach().float().requires_grad_()) for name, value in inputs.items()}
    with native.use_native(True), products_on(library):
        got, got_grads = results_and_grads(kind, single, None if mask64 is None else mask64.float())
    for g, w in zip(got + got_grads, want + want_grads, strict=True):
        torch.testing.assert_close(g.double(), w, atol=2e-4, rtol=2e-4)


def test_choice_follows_the_environment(monkeypatch):
    """RNNLAB_ONEDNN_PRODUCTS decides where it is set; else the CPU does."""
    monkeypatch.setenv("RNNLAB_ONEDNN_PRODUCTS", "0")
    assert native.onednn_products() is False
    monkeypatch.setenv("RNNLAB_ONEDNN_PRODUCTS", "1")
    assert native.onednn_products() is torch.backends.mkldnn.is_available()
    monkeypatch.delenv("RNNLAB_ONEDNN_PRODUCTS")
    monkeypatch.setattr(native, "cpu_vendor", lambda: "GenuineIntel")
    assert native.onednn_products() is False
    monkeypatch.setattr(native, "cpu_vendor", lambda: "AuthenticAMD")
    monkeypatch.setattr(native, "_cpu_flags", lambda: set(native.AVX512))
    assert native.onednn_products() is torch.backends.mkldnn.is_available()
    monkeypatch.setattr(native, "_cpu_flags", lambda: {"avx2", "fma"})
    assert native.onednn_products() is False


LAYERS = {"peephole LSTM": (rn.LSTM, {"peephole": True}), "GRU": (rn.GRU, {}),
          "minimal GRU": (rn.GRU, {"variant": "minimal"}), "RNN": (rn.RNN, {})}


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_layers_match_float64(library, layer, masked):
    """Whole float32 layers (2 layers, bidirectional: every product above, the input projection
    included) with the large products on either library, against the same layer in float64 on
    the Python loops: outputs, final states and every parameter's gradient."""
    extension(library)
    cls, kwargs = LAYERS[layer]
    torch.manual_seed(0)
    wide = cls(30, 40, num_layers=2, bidirectional=True, impl="fused", **kwargs)
    exact = cls(30, 40, num_layers=2, bidirectional=True, impl="fused", dtype=torch.float64,
                **kwargs)
    exact.load_state_dict({k: v.double() for k, v in wide.state_dict().items()})
    x = torch.randn(11, 7, 30)
    lengths = torch.tensor([11, 9, 9, 5, 3, 2, 1]) if masked else None
    projection = torch.randn(80, dtype=torch.float64)

    def run(module, inputs):
        out, state = module(inputs, lengths=lengths)
        states = state if isinstance(state, tuple) else (state,)
        loss = (out.double() @ projection).sum() + sum(s.double().sum() for s in states)
        grads = torch.autograd.grad(loss, list(module.parameters()))
        return [out.detach(), *(s.detach() for s in states), *grads]

    with native.use_native(True), products_on(library):
        got = run(wide, x)
    with native.use_native(False):
        want = run(exact, x.double())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), w, atol=2e-4, rtol=2e-4)


def test_kept_freed_memory_lowers_the_depth(monkeypatch):
    """Once malloc keeps freed memory, the products take oneDNN at every depth."""
    ext = extension()
    monkeypatch.setattr(native, "_freed_memory_kept", False)
    with native.use_onednn_products(True, 96):
        native.note_freed_memory_kept()
        assert ext.onednn_min_depth() == 1


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 300), depth=st.integers(1, 300), width=st.integers(1, 100),
       left_transposed=st.booleans(), right_transposed=st.booleans(), seed=st.integers(0, 2**16))
def test_kernel_product(threads, rows, depth, width, left_transposed, right_transposed, seed):
    """The kernel's large product a @ b (`multiply_rows`, in blocks of 64 rows): a row-major or
    the transposed view of a contiguous tensor (d^T of dW = d^T x), b contiguous or the
    transposed view W^T; the same bits at one thread and two (each a share of the blocks)."""
    ext = extension("kernel-dW")
    gen = torch.Generator().manual_seed(seed)
    a = (torch.randn(depth, rows, generator=gen).t() if left_transposed
         else torch.randn(rows, depth, generator=gen))
    b = (torch.randn(width, depth, generator=gen).t() if right_transposed
         else torch.randn(depth, width, generator=gen))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = ext.kernel_product(a, b)
        torch.set_num_threads(3 - threads)
        other = ext.kernel_product(a, b)
    finally:
        torch.set_num_threads(before)
    close(got, a.double() @ b.double(), depth)
    assert torch.equal(got, other)


def test_kernel_weight_grads_follow_the_environment(monkeypatch):
    """RNNLAB_KERNEL_WEIGHT_GRADS decides where it is set (and the build has the kernel); else
    dW goes where the large products go to oneDNN."""
    has_kernel = "-DCPU_CAPABILITY_AVX512" in native.compile_flags()
    monkeypatch.setenv("RNNLAB_KERNEL_WEIGHT_GRADS", "0")
    assert native.kernel_weight_grads() is False
    monkeypatch.setenv("RNNLAB_KERNEL_WEIGHT_GRADS", "1")
    assert native.kernel_weight_grads() is has_kernel
    monkeypatch.delenv("RNNLAB_KERNEL_WEIGHT_GRADS")
    monkeypatch.setattr(native, "onednn_products", lambda: False)
    assert native.kernel_weight_grads() is False
    monkeypatch.setattr(native, "onednn_products", lambda: True)
    assert native.kernel_weight_grads() is has_kernel
    monkeypatch.setenv("RNNLAB_NATIVE_STEP_GEMM", "0")
    assert native.kernel_weight_grads() is False
