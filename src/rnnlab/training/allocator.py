"""Keep the memory a training step frees for the next step, instead of handing it back to the
system (glibc's malloc, Linux).

Why: every step allocates and frees the same large tensors (activations, logits, gradients).
glibc serves a block above its mmap threshold with a fresh `mmap` and unmaps it on free, and it
returns free memory at the top of its heap above its trim threshold; either way the next step
writes to new pages and pays one page fault per 4 KiB. For the ptb-small LM (one thread) that
was 25-30 ms of system time per step in a plain pytorch/examples-style loop and about 15 ms in
rnnlab's, out of 380-450 ms; with both thresholds raised it fell below 1 ms in both (each
process's CPU clock, `cpu_system` in the training log). This is what the jemalloc/tcmalloc
preload that PyTorch's CPU performance guide recommends buys, done from inside the process.

The cost: the process keeps its peak heap (up to TRIM_THRESHOLD more than it uses) until it
exits, which a training process reaches every step anyway. Nothing changes where the user
already tuned malloc (MALLOC_*_ / GLIBC_TUNABLES / a preloaded allocator), outside glibc, or
with RNNLAB_KEEP_FREED_MEMORY=0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap and are reused; larger ones are mmapped as before.
# 256 MiB covers the per-step tensors of the models here, e.g. a 35 x 20 x 10k LM's logits
# (28 MB) or a B32 T128 LSTM's gates (34 MB). glibc versions that refuse more than their
# documented maximum (32 MiB on 64-bit systems) get that.
MMAP_THRESHOLD = 256 * 2**20
MMAP_THRESHOLD_FALLBACK = 32 * 2**20
# Free memory at the heap's top is returned to the system only beyond this.
TRIM_THRESHOLD = 2**30
# Environment settings that mean the user chose the allocator's behaviour already.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "MALLOC_MMAP_MAX_")
PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def _user_tuned(environ: os._Environ | dict[str, str]) -> bool:
    if any(name in environ for name in USER_SETTINGS):
        return True
    if "malloc" in environ.get("GLIBC_TUNABLES", ""):
        return True
    preload = environ.get("LD_PRELOAD", "")
    return any(name in preload for name in PRELOADED_ALLOCATORS)


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; whether they were raised."""
    if os.environ.get("RNNLAB_KEEP_FREED_MEMORY", "1") == "0" or _user_tuned(os.environ):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; a fixed mmap threshold also turns off glibc's own
    # adjustment of both thresholds, which lowers them again after some frees.
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) or \
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_FALLBACK)
    kept = bool(mapped) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if kept:  # fresh outputs are now cheap: the compiled loops' products may return them
        from rnnlab.nn import native

        native.note_freed_memory_kept()
    return kept
