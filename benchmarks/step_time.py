"""CPU milliseconds per training step of one rnnlab recurrent layer, to compare two commits.

recurrent_speed.py compares a layer with torch.nn in the same process; a change inside rnnlab is
better measured against rnnlab before it. Run this script from two checkouts, each with its own
TORCH_EXTENSIONS_DIR (so each keeps its own build of the C++ loops), one process at a time, in
ABBA order, and compare the means:

    git worktree add /tmp/before <commit>
    TORCH_EXTENSIONS_DIR=/tmp/ext-before PYTHONPATH=/tmp/before/src \\
        python benchmarks/step_time.py --config b --cell gru
    TORCH_EXTENSIONS_DIR=/tmp/ext-after PYTHONPATH=src python benchmarks/step_time.py ...

A step is the forward and backward of the layer on config (b)'s shapes (or (a), (c)), loss a
fixed random projection of the output, as recurrent_speed.py's fwd+bwd; one torch thread (CPU
clock), or `--threads N` (wall clock, as recurrent_speed.py at more threads).
"""

from __future__ import annotations

import argparse
import time

import torch

import rnnlab
from recurrent_speed import config_shape
from rnnlab.nn import GRU, LSTM, RNN

CELLS = {"gru": GRU, "lstm": LSTM, "rnn": RNN,
         "peephole": lambda *args, **kwargs: LSTM(*args, peephole=True, **kwargs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=["a", "b", "c"], default="b")
    parser.add_argument("--cell", choices=sorted(CELLS), default="gru")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    torch.manual_seed(0)
    batch, steps, layers, hidden, inputs = config_shape(args.config)
    layer = CELLS[args.cell](inputs, hidden, num_layers=layers)
    x = torch.randn(steps, batch, inputs, requires_grad=True)
    projection = torch.randn(hidden)

    def step() -> None:
        out, _ = layer(x)
        (out @ projection).sum().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    for _ in range(args.warmup):
        step()
    started = clock()
    for _ in range(args.steps):
        step()
    ms = (clock() - started) / args.steps * 1e3
    print(f"{rnnlab.__file__}: {args.cell} ({args.config}) {ms:.2f} ms a step, "
          f"{args.threads} thread{'s' if args.threads > 1 else ''}")


if __name__ == "__main__":
    main()
