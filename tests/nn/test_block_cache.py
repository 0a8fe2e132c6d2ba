"""The compiled loops' cache of large buffers (csrc/block_cache.h): buffers of 1 MiB and more
come back from it on the next call, and that must never change a number or hand out memory a
live tensor still holds.

The float64 comparisons of test_native.py run sizes far below 1 MiB, where the cache is not
used; these run sizes above it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from tests.nn.test_fused import KINDS, make_inputs, mask_from, results_and_grads
from tests.nn.test_fused import fused as run_fused

from rnnlab.nn import native

pytestmark = pytest.mark.skipif(
    os.environ.get("RNNLAB_REQUIRE_NATIVE") != "1" and not native.available(),
    reason="the C++ recurrences could not be built here")

# (T, B, G*H) float64 buffers of at least 1 MiB for every kind (G >= 1): 32 * 8 * 512 * 8 bytes
T, B, H = 32, 8, 512


def wide_inputs(kind: str, seed: int = 0) -> dict:
    """make_inputs with W_hh scaled by 1/sqrt(H), as layers initialise it: weights of +-1 over
    512 units drive the recurrence into chaos, where rounding differences of 1e-16 grow."""
    inputs = make_inputs(kind, T, B, H, seed=seed)
    with torch.no_grad():
        inputs["weight_hh"].mul_(H ** -0.5)
    return inputs


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [False, True], ids=["full-length", "lengths"])
def test_cached_buffers_give_the_python_loops_numbers(kind, masked):
    """Twice in a row, so that the second call runs in blocks the first one gave back."""
    inputs = wide_inputs(kind)
    mask = mask_from([T, T - 5, 3, 17, T, 1, 9, 30], T) if masked else None
    with native.use_native(False):
        want, want_grads = results_and_grads(run_fused, kind, inputs, mask)
    for _ in range(2):
        with native.use_native(True):
            got, got_grads = results_and_grads(run_fused, kind, inputs, mask)
        for g, w in zip(got + got_grads, want + want_grads, strict=True):
            torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "gru-full", "rnn-tanh"])
def test_live_outputs_are_not_reused(kind):
    """Outputs kept from earlier calls keep their values while later calls run: a cache that
    handed out a block still in use would overwrite them."""
    kept = []
    for seed in range(3):
        inputs = wide_inputs(kind, seed)
        with torch.no_grad(), native.use_native(True):
            out = run_fused(kind, inputs, None)[0]
        kept.append((out, out.clone()))
    for out, copy in kept:
        assert torch.equal(out, copy)


def test_freed_blocks_are_kept_and_can_be_returned():
    extension = native._build()
    native.empty_cache()
    inputs = wide_inputs("gru-full")
    with native.use_native(True):
        out = run_fused("gru-full", inputs, None)[0]
        out.sum().backward()
    del out
    assert extension.cached_bytes() >= T * B * 3 * H * 8  # at least the gates came back
    native.empty_cache()
    assert extension.cached_bytes() == 0


def test_cached_output_can_be_resized():
    """The buffers are ordinary resizable tensors: code that grows an output in place works."""
    inputs = wide_inputs("rnn-tanh")
    with torch.no_grad(), native.use_native(True):
        out = run_fused("rnn-tanh", inputs, None)[0]
    first = out[0].clone()
    out.resize_(2 * T, B, H)
    assert torch.equal(out[0], first)


def run_with_cache_setting(value: str) -> subprocess.CompletedProcess:
    code = ("import torch; from rnnlab.nn import GRU\n"
            "torch.manual_seed(0)\n"
            "layer = GRU(64, 512, impl='fused')\n"
            "out = layer(torch.randn(64, 16, 64))[0]\n"
            "print(float(out.sum()))\n")
    env = {**os.environ, "RNNLAB_NATIVE_CACHE_MB": value}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cache_can_be_switched_off_and_a_bad_setting_is_one_clear_error():
    off, on = run_with_cache_setting("0"), run_with_cache_setting("1024")
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    assert off.stdout == on.stdout
    bad = run_with_cache_setting("lots")
    assert bad.returncode != 0
    assert "RNNLAB_NATIVE_CACHE_MB must be a whole number of MiB" in bad.stderr
