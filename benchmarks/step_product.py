"""The compiled loops' per-step product (csrc/step_product.h) against torch.mm, at one thread
(CPU clock) or more (`--threads N`, wall clock: the kernel splits its panels between them).

A time loop multiplies a batch of B rows by the same recurrent weight at every step: forward
h_{t-1} W_hh^T, (B, H) x (H, G*H); backward base + d_pre_t W_hh, (B, G*H) x (G*H, H). For the
layer shapes of recurrent_speed.py's configs, this times one sequence of `steps` such products
each way, the kernel's panel layout of W made once per sequence as the loops make it, against
torch.mm / addmm on W^T made contiguous once (the loops' fallback), alternating call by call
(ABBA) on the CPU-time clock.

    python benchmarks/step_product.py [--threads 2]

Writes benchmarks/results/step_product.{json,md} (or --output).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import records
from rnnlab.nn import native
from timing import CLOCKS, paired_block

# config: (batch, steps, hidden, gates) of the widest layer; (d)-(f) run GRU-width gates (3)
SHAPES = {"a": (20, 35, 200, 3), "b": (20, 35, 650, 3), "c": (32, 128, 512, 3),
          "c-lstm": (32, 128, 512, 4), "d": (64, 50, 256, 3), "f": (50, 40, 150, 3)}


def sequence_calls(ext, batch: int, steps: int, hidden: int, gates: int):
    """(torch forward, kernel forward, torch backward, kernel backward): one sequence each."""
    weight = torch.randn(gates * hidden, hidden) * hidden ** -0.5
    h, d = torch.randn(batch, hidden), torch.randn(batch, gates * hidden)
    base, out, grad = torch.randn(batch, hidden), torch.empty(batch, gates * hidden), torch.empty(
        batch, hidden)

    def torch_forward():
        right = weight.t().contiguous()
        for _ in range(steps):
            torch.mm(h, right, out=out)

    def torch_backward():
        for _ in range(steps):
            torch.addmm(base, d, weight, out=grad)

    def kernel_forward():
        ext.step_product(h, weight, True, None, steps)

    def kernel_backward():
        ext.step_product(d, weight, False, base, steps)

    return torch_forward, kernel_forward, torch_backward, kernel_backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10, help="sequences per timed block")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="step_product")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ext = native.extension_for(torch.zeros(1))
    if ext is None or not ext.step_product_applies(torch.zeros(4, 4), 4):
        raise SystemExit("step_product: the kernel does not run here (it needs the compiled "
                         "loops built for AVX-512, and RNNLAB_NATIVE_STEP_GEMM unset or 1)")
    clock = CLOCKS["cpu" if args.threads == 1 else "wall"]
    rows, lines = [], []
    for key, (batch, steps, hidden, gates) in SHAPES.items():
        torch_fwd, kernel_fwd, torch_bwd, kernel_bwd = sequence_calls(ext, batch, steps, hidden,
                                                                      gates)
        flops = 2 * batch * hidden * gates * hidden * steps
        result = {"config": key, "batch": batch, "steps": steps, "hidden": hidden,
                  "gates": gates}
        for way, reference, kernel in (("forward", torch_fwd, kernel_fwd),
                                       ("backward", torch_bwd, kernel_bwd)):
            paired_block(reference, kernel, 2, clock)  # warm-up
            pairs = [paired_block(reference, kernel, args.calls, clock)
                     for _ in range(args.rounds)]
            ref_s = statistics.median(p[0] for p in pairs)
            own_s = statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[0] / p[1] for p in pairs)
            result[way] = {"torch_ms": ref_s * 1e3, "kernel_ms": own_s * 1e3,
                           "torch_gflops": flops / ref_s / 1e9,
                           "kernel_gflops": flops / own_s / 1e9, "speedup": ratio}
            rows.append([f"({key}) B{batch} H{hidden} x{gates}, {steps} steps", way,
                         f"{ref_s * 1e3:.2f} ({flops / ref_s / 1e9:.0f})",
                         f"{own_s * 1e3:.2f} ({flops / own_s / 1e9:.0f})", f"**{ratio:.2f}**"])
            print(rows[-1], flush=True)
        lines.append(result)
    threads = f"{args.threads} thread{'s' if args.threads > 1 else ''}"
    markdown = [f"# The per-step product: csrc/step_product.h against torch.mm, {threads}", "",
                "One sequence of per-step products (kernel: its weight layout made once per "
                f"sequence, included); {'CPU' if args.threads == 1 else 'wall'} ms (GFLOP/s), "
                "medians of "
                f"{args.rounds} ABBA rounds of {args.calls} sequences.", ""]
    markdown += records.table_lines(["layer", "way", "torch.mm", "kernel", "speed-up"], rows)
    records.save_record(args.output, {"shapes": lines}, "\n".join(markdown))


if __name__ == "__main__":
    main()
