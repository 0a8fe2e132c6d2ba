"""Timing shared by the speed benchmarks: the clock to read, and a model timed paired with its
reference so that both see the same moments of machine load.

Wall-clock time by default; `--clock cpu` reads the process's CPU time instead, which with one
thread leaves out the moments another process held the core (a shared machine's main noise).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"wall": time.perf_counter, "cpu": time.process_time}


def add_clock_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall-clock time, or the process's CPU time (with --threads 1, "
                             "immune to other processes taking turns on the core)")


def cuda_clock() -> float:
    """Wall-clock time once the GPU has finished what was queued: CUDA calls return before their
    kernels run, so a timer read without the synchronize would time the queueing."""
    import torch

    torch.cuda.synchronize()
    return time.perf_counter()


def clock_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Clock:
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1 (CPU time of N threads is not N times faster)")
    return CLOCKS[args.clock]


def timed_block(fn: Callable[[], None], calls: int, clock: Clock) -> float:
    """Seconds per call of `fn`, over `calls` calls in a row."""
    start = clock()
    for _ in range(calls):
        fn()
    return (clock() - start) / calls


def paired_block(reference: Callable[[], None], fn: Callable[[], None], calls: int,
                 clock: Clock) -> tuple[float, float]:
    """Seconds per call of the reference and the model, alternating call by call in ABBA order:
    a burst of load from another process lands on both, not on whichever block it hit."""
    spent = [0.0, 0.0]
    pair = (reference, fn)
    for i in range(calls):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = clock()
            pair[which]()
            spent[which] += clock() - start
    return spent[0] / calls, spent[1] / calls
