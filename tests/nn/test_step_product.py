"""The hand-written per-step product of the compiled loops (csrc/step_product.h): float32,
AVX-512 builds, at one torch thread and at two (its panels split between the threads). Its
oracle is a float64 product of the same float32 numbers; the layers' loops that use it are held
to their float64 Python loops.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.nn.test_fused import KINDS, leaves, make_inputs, mask_from
from tests.nn.test_fused import fused as run_fused

from rnnlab.nn import native


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"], autouse=True)
def threads(request):
    """Every test at one torch thread and at two, where each thread computes half the panels."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def extension():
    if os.environ.get("RNNLAB_REQUIRE_NATIVE") != "1" and not native.available():
        pytest.skip("the C++ recurrences could not be built here")
    ext = native.extension_for(torch.zeros(1))
    assert ext is not None
    if not ext.step_product_applies(torch.zeros(4, 4), 4):
        pytest.skip("the step product needs an AVX-512 build (and RNNLAB_NATIVE_STEP_GEMM != 0)")
    return ext


def results_and_grads(kind, inputs, mask):
    """Outputs and the gradients of one float64 random projection of all outputs (the same
    projection whatever the outputs' dtype) w.r.t. every input."""
    results = run_fused(kind, inputs, mask)
    gen = torch.Generator().manual_seed(1)
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=torch.float64).to(r.dtype)).sum()
               for r in results)
    grads = torch.autograd.grad(loss, leaves(inputs))
    return [r.detach() for r in results], list(grads)


def exact(a: torch.Tensor, weight: torch.Tensor, transposed: bool, base) -> torch.Tensor:
    right = weight.double().t() if transposed else weight.double()
    out = a.double() @ right
    return out if base is None else out + base.double()


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 64), inner=st.integers(1, 700), outer=st.integers(1, 200),
       transposed=st.booleans(), with_base=st.booleans(), seed=st.integers(0, 2**16))
def test_equals_the_product(rows, inner, outer, transposed, with_base, seed):
    """Any batch of 1-64 rows, any depth (one or more passes of 256 over k, the prefetch past a
    panel's end) and any width (a last panel of 1-32 columns)."""
    ext = extension()
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, inner, generator=gen)
    weight = torch.randn(outer, inner, generator=gen) if transposed else torch.randn(
        inner, outer, generator=gen)
    base = torch.randn(rows, outer, generator=gen) if with_base else None
    got = ext.step_product(a, weight, transposed, base, 1)
    want = exact(a, weight, transposed, base)
    # float32 rounding of `inner` products of N(0, 1) numbers: about 1e-7 * sqrt(inner) each
    torch.testing.assert_close(got.double(), want, atol=2e-5 * inner ** 0.5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 64), head=st.integers(1, 600), tail=st.integers(1, 300),
       outer=st.integers(1, 100), with_base=st.booleans(), seed=st.integers(0, 2**16))
def test_a_left_factor_in_two_parts(rows, head, tail, outer, with_base, seed):
    """[a, tail] @ B with the two blocks of columns apart, as the full GRU's backward passes
    d_rz (rows of d_x, 3H apart) beside d_hn: the passes over k end where the head does."""
    ext = extension()
    gen = torch.Generator().manual_seed(seed)
    wide = torch.randn(rows, head + 7, generator=gen)  # rows farther apart than `head`
    a, rest = wide[:, :head], torch.randn(rows, tail, generator=gen)
    weight = torch.randn(head + tail, outer, generator=gen)
    base = torch.randn(rows, outer, generator=gen) if with_base else None
    got = ext.step_product(a, weight, False, base, 1, rest)
    want = exact(torch.cat([a, rest], 1), weight, False, base)
    torch.testing.assert_close(got.double(), want, atol=2e-5 * (head + tail) ** 0.5, rtol=1e-5)


@pytest.mark.parametrize("transposed", [True, False])
def test_both_walks_give_the_same_bits(transposed):
    """Calls alternate the order of the panels (the last ones read stay in L2); each output is
    the same sum in the same order either way."""
    ext = extension()
    a, weight = torch.randn(20, 650), torch.randn(1950, 650)
    if not transposed:
        a = torch.randn(20, 1950)
    forward = ext.step_product(a, weight, transposed, None, 1)
    backward = ext.step_product(a, weight, transposed, None, 2)
    assert torch.equal(forward, backward)


def test_row_views_with_a_stride():
    """The loops pass the running rows of a state, views whose rows lie farther apart."""
    ext = extension()
    wide = torch.randn(10, 300)
    a = wide[:, :200]  # rows 300 floats apart
    weight = torch.randn(96, 200)
    got = ext.step_product(a, weight, True, None, 1)
    torch.testing.assert_close(got.double(), exact(a, weight, True, None), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch", [20, 64, 65])
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_loops_with_it_match_float64(kind, batch, masked):
    """Every loop, float32 through the kernel (batches up to 64; 65 runs torch's product), with
    and without lengths: outputs and all gradients as the float64 Python loops give them."""
    extension()
    T, H = 12, 70  # G*H columns: 70-280, never a whole number of 32-column panels
    inputs = make_inputs(kind, T, batch, H, dtype=torch.float64)
    with torch.no_grad():
        inputs["weight_hh"].mul_(H ** -0.5)
    lengths = [T - (b * 7) % T for b in range(batch)] if masked else None
    mask64 = mask_from(lengths, T) if masked else None
    with native.use_native(False):
        want, want_grads = results_and_grads(kind, inputs, mask64)
    single = {name: None if value is None else (
        tuple(v.detach().float().requires_grad_() for v in value) if isinstance(value, tuple)
        else value.detach().float().requires_grad_()) for name, value in inputs.items()}
    mask32 = None if mask64 is None else mask64.float()
    with native.use_native(True):
        got, got_grads = results_and_grads(kind, single, mask32)
    for g, w in zip(got + got_grads, want + want_grads, strict=True):
        torch.testing.assert_close(g.double(), w, atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("rows,inner,outer", [(20, 200, 400), (20, 650, 1950), (64, 256, 768),
                                              (33, 300, 1000), (1, 2048, 2049)])
@pytest.mark.parametrize("transposed", [True, False])
def test_threads_share_the_panels_bit_for_bit(rows, inner, outer, transposed):
    """Products of 1M multiply-adds and more split their panels between torch's threads: each
    output is the same sum in the same order, so two threads give one thread's bits (widths
    that leave a last panel of 1-31 columns, and fewer panels than some thread counts)."""
    ext = extension()
    a = torch.randn(rows, inner)
    weight = torch.randn(outer, inner) if transposed else torch.randn(inner, outer)
    base = torch.randn(rows, outer)
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        results.append(ext.step_product(a, weight, transposed, base, 1))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    torch.testing.assert_close(results[0].double(), exact(a, weight, transposed, base),
                               atol=2e-5 * inner ** 0.5, rtol=1e-5)
