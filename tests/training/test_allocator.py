"""keep_freed_memory: glibc then serves large blocks from its heap and keeps freed memory.

Each case runs in a fresh interpreter: the thresholds are per process and cannot be undone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from rnnlab.training.allocator import MMAP_THRESHOLD, _user_tuned

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="the thresholds are glibc's")

# Three 24 MiB blocks (below MMAP_THRESHOLD, above glibc's default 128 KiB): how many of them
# glibc mmapped, and how much free memory its heap keeps at the top once they are freed.
PROBE = """
import ctypes, json, sys
from rnnlab.training.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "apply" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
before = libc.mallinfo2().hblks
blocks = [libc.malloc(24 << 20) for _ in range(3)]
mmapped = libc.mallinfo2().hblks - before
for block in reversed(blocks):
    libc.free(block)
print(json.dumps({"applied": applied, "mmapped": mmapped, "kept": libc.mallinfo2().keepcost}))
"""


def probe(mode: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD",
                                                         "RNNLAB_KEEP_FREED_MEMORY")}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            env={**clean, **env}, check=True, timeout=120)
    return json.loads(result.stdout)


@glibc
def test_large_blocks_come_from_the_heap_and_stay_after_free():
    assert 24 << 20 < MMAP_THRESHOLD
    default = probe("default")
    assert default["mmapped"] == 3  # glibc's own behaviour: each block its own mmap
    kept = probe("apply")
    assert kept["applied"] is True
    assert kept["mmapped"] == 0
    assert kept["kept"] >= 3 * (24 << 20)  # all three freed blocks stay in the process


@glibc
def test_opt_out_and_user_settings_are_respected():
    for env in ({"RNNLAB_KEEP_FREED_MEMORY": "0"}, {"MALLOC_MMAP_THRESHOLD_": "1048576"}):
        untouched = probe("apply", **env)
        assert untouched["applied"] is False
        assert untouched["mmapped"] == 3  # glibc's defaults, or the user's 1 MiB threshold


@pytest.mark.parametrize(("environ", "tuned"), [
    ({}, False),
    ({"PATH": "/usr/bin"}, False),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}, True),
    ({"GLIBC_TUNABLES": "glibc.rtld.nns=8"}, False),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, True),
])
def test_user_tuned(environ, tuned):
    assert _user_tuned(environ) is tuned
