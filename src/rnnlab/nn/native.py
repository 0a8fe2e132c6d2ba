"""The C++ loops of `csrc/` (the time loops of training in recurrences.cpp, the token loop of
sampling in generate.cpp), compiled on first use; None where they cannot be.

Why C++: a Python time loop pays 8-15 tensor operations a step (a dispatch and a pass over
memory each); the C++ loop pays one matrix product and one fused pass over the gates. Nothing
about installing changes: the source ships with the package and is built by
`torch.utils.cpp_extension` (a C++ compiler and ninja) the first time a CPU recurrence runs,
then cached (TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions). Where the build is
impossible, rnnlab says so once and fused.py runs its Python loops (same numbers, slower).
`RNNLAB_NATIVE=0` turns the C++ loops off; `use_native(False)` does so in code.
Float32 batches of up to 64 rows run the per-step products through a hand-written AVX-512 kernel
(csrc/step_product.h; its panels split between torch's threads, through the OpenMP runtime torch
itself loaded; `RNNLAB_NATIVE_STEP_GEMM=0` turns it off).
Elsewhere `RNNLAB_NATIVE_MKL_PACK=0` keeps torch.mm for the per-step product where the loops
would use MKL's packed weight (float32, batches without lengths, where torch's MKL exports the
packed API).
The loops' buffers of 1 MiB and more come from a cache kept between calls (csrc/block_cache.h:
fresh memory faults in page by page); `RNNLAB_NATIVE_CACHE_MB` caps the free blocks it keeps
(default 1024, 0 turns it off), and `empty_cache()` hands them back to the system.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch

# recurrences.cpp: the time loops of training; generate.cpp: the token loop of sampling
SOURCES = [Path(__file__).with_name("csrc") / name for name in ("recurrences.cpp", "generate.cpp")]
NAME = "rnnlab_recurrences"
_enabled = os.environ.get("RNNLAB_NATIVE", "1") != "0"
# what torch builds its own AVX-512 kernels for
AVX512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"}


def _cpuinfo(field: str) -> str:
    """The first `field` of /proc/cpuinfo ('' where there is none, as off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_flags() -> set[str]:
    return set(_cpuinfo("flags").split())


def cpu_vendor() -> str:
    """'GenuineIntel', 'AuthenticAMD', ... ('' where unknown)."""
    return _cpuinfo("vendor_id")


def cpu_model() -> str:
    """The CPU's model name, e.g. 'AMD EPYC' ('' where unknown)."""
    return _cpuinfo("model name")


def compile_flags() -> list[str]:
    """-O3, plus AVX-512 (the set torch builds its own AVX-512 kernels for) or else AVX2/FMA
    where the CPU has them: ATen's vectors then use them, with Sleef's exp and tanh. The build
    runs on the machine that uses it. AVX-512 made batched SST-2 `predict` 1.07x faster on an
    Intel Xeon; RNNLAB_NATIVE_AVX512=0 keeps the AVX2 build."""
    flags, cpu = ["-O3"], _cpu_flags()
    if os.environ.get("RNNLAB_NATIVE_AVX512", "1") != "0" and AVX512 <= cpu:
        flags += ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
                  "-DCPU_CAPABILITY_AVX512", "-DCPU_CAPABILITY=AVX512"]
    elif {"avx2", "fma"} <= cpu:
        flags += ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"]
    return flags


def openmp_flags() -> list[str]:
    """-fopenmp where torch runs OpenMP on Linux (GCC): at::parallel_for in the loops (the step
    product's panels) then shares torch's thread pool, since the extension's libgomp.so.1 is
    the copy torch already loaded. Elsewhere it runs on one thread (same numbers)."""
    return ["-fopenmp"] if sys.platform.startswith("linux") and \
        torch.backends.openmp.is_available() else []


@functools.cache
def _build() -> ModuleType | None:
    from torch.utils import cpp_extension

    try:
        build_dir = Path(cpp_extension._get_build_directory(NAME, verbose=False))
        if not any(build_dir.glob(f"{NAME}*.so")):
            print("rnnlab: building the C++ recurrences (once, about a minute) ...",
                  file=sys.stderr, flush=True)
        module = cpp_extension.load(name=NAME, sources=[str(source) for source in SOURCES],
                                    extra_cflags=compile_flags() + openmp_flags(),
                                    extra_ldflags=openmp_flags(), verbose=False)
    except Exception as error:  # no compiler, no ninja, no headers: fall back, say so once
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(f"rnnlab: the C++ recurrences could not be built ({reason}); the Python "
                      "loops run instead (same numbers, slower; a C++ compiler and "
                      "`pip install 'rnnlab[native]'` enable them)",
                      RuntimeWarning, stacklevel=3)
        return None
    module.set_onednn_products(onednn_products())
    module.set_kernel_weight_grads(kernel_weight_grads())
    if _freed_memory_kept:
        module.set_onednn_min_depth(1)
    return module


# Whether malloc keeps the memory a step frees (training/allocator.py): oneDNN's products return
# fresh outputs, which then cost no page faults, so they run at every depth.
_freed_memory_kept = False


def note_freed_memory_kept() -> None:
    """Called once malloc keeps freed memory: the large products take oneDNN (where it is on) at
    every depth, not only from 96 (recurrences.cpp: `onednn_min_depth`)."""
    global _freed_memory_kept
    _freed_memory_kept = True
    if _build.cache_info().currsize:  # built already (or failed: None)
        extension = _build()
        if extension is not None:
            extension.set_onednn_min_depth(1)


def onednn_products() -> bool:
    """Whether the large products around the loops (input projections of all steps, their
    gradients, dW) run on oneDNN rather than torch.mm (MKL): on non-Intel CPUs with AVX-512,
    where MKL takes an AVX2 path at half oneDNN's rate (85-105 against 180-230 GFLOP/s at one
    thread on a Zen 5 EPYC, `benchmarks/large_products.py`). `RNNLAB_ONEDNN_PRODUCTS=1` or `=0`
    decides instead."""
    # torch's oneDNN linear: torch.ops.mkldnn._linear_pointwise (this torch has it, and oneDNN)
    has_linear = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                                   "_linear_pointwise")
    wanted = os.environ.get("RNNLAB_ONEDNN_PRODUCTS")
    if wanted is not None:
        return wanted != "0" and has_linear
    return cpu_vendor() not in ("GenuineIntel", "") and AVX512 <= _cpu_flags() and has_linear


def kernel_weight_grads() -> bool:
    """Whether the loops' weight gradients dW = d^T x (x at least 128 wide) run on the step
    product's own kernel (csrc/step_product.h), which reads d^T as it lies, instead of a library
    product that needs a transposing copy: where the large products run on oneDNN (non-Intel
    CPUs with AVX-512; 1.08-1.26x oneDNN's there for configs (a)-(f) at one thread) and the
    build has the kernel. `RNNLAB_KERNEL_WEIGHT_GRADS=1` or `=0` decides instead."""
    has_kernel = "-DCPU_CAPABILITY_AVX512" in compile_flags() and \
        os.environ.get("RNNLAB_NATIVE_STEP_GEMM", "1") != "0"
    wanted = os.environ.get("RNNLAB_KERNEL_WEIGHT_GRADS")
    if wanted is not None:
        return wanted != "0" and has_kernel
    return onednn_products() and has_kernel


def extension_for(x: torch.Tensor) -> ModuleType | None:
    """The compiled loops if they are on and apply to `x` (CPU, float32/float64), else None."""
    if not _enabled or x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    return _build()


def empty_cache() -> None:
    """Return the compiled loops' cached free buffers to the system (those in use stay)."""
    extension = _build() if _enabled else None
    if extension is not None:
        extension.empty_cache()


def available() -> bool:
    """Whether the compiled loops are on and built (building them if need be)."""
    return _enabled and _build() is not None


@contextmanager
def _switched(**settings):
    """Set the compiled loops' switches (name: value, None leaves one as it is) inside a block,
    through the extension's `name()` and `set_name(value)`."""
    extension = _build()
    if extension is None:
        raise RuntimeError("the C++ recurrences are not built")
    changed = {name: value for name, value in settings.items() if value is not None}
    before = {name: getattr(extension, name)() for name in changed}
    for name, value in changed.items():
        getattr(extension, f"set_{name}")(value)
    try:
        yield
    finally:
        for name, value in before.items():
            getattr(extension, f"set_{name}")(value)


def use_onednn_products(enabled: bool, min_depth: int | None = None):
    """Run the loops' large products on oneDNN (True, from depth `min_depth` if given) or
    torch.mm (False) inside a block (tests, benchmarks), whatever `onednn_products()` chose."""
    return _switched(onednn_products=enabled, onednn_min_depth=min_depth)


def use_kernel_weight_grads(enabled: bool, min_width: int | None = None):
    """Run the loops' weight gradients on the step product's kernel (True; for x at least
    `min_width` wide if given, else 128) or on the large products' library (False) inside a
    block (tests, benchmarks)."""
    return _switched(kernel_weight_grads=enabled, kernel_min_width=min_width)


@contextmanager
def use_native(enabled: bool):
    """Turn the compiled loops on or off inside a block (tests, benchmarks)."""
    global _enabled
    before, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = before
