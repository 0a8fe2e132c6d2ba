"""The large products around the compiled loops on torch.mm (MKL) and on oneDNN's linear.

Around each time loop, a layer runs a few large products over all T*B rows: its input
projection x W_ih^T, the gradient d W_ih, and dW_ih, dW_hh (d^T x). native.py sends them to
oneDNN on non-Intel CPUs with AVX-512, where MKL runs an AVX2 kernel. This times both libraries
on the shapes of recurrent_speed.py's configs, alternating call by call (ABBA), the loops' own
way of calling each (`project`, `weight_grad`, with their buffers):

    python benchmarks/large_products.py [--threads 1]

Writes benchmarks/results/large_products.{json,md} (or --output).
"""

from __future__ import annotations

import argparse
import functools
import statistics

import torch

import records
from rnnlab.nn import native
from timing import CLOCKS, paired_block

# config: (rows T*B, inputs, gate columns G*H, hidden H) of the widest layer of each config,
# the GRU's 3 gates ((c): the LSTM's 4 over 64 inputs)
SHAPES = {"a": (700, 200, 600, 200), "b": (700, 650, 1950, 650), "c": (4096, 64, 2048, 512),
          "d": (3200, 256, 768, 256), "e": (1040, 100, 450, 150), "f": (2500, 300, 450, 150)}


def products(ext, rows: int, inputs: int, columns: int, hidden: int):
    """(name, flops, call) of each large product of one layer's fwd+bwd."""
    x, weight = torch.randn(rows, 1, inputs), torch.randn(columns, inputs)
    d, states = torch.randn(rows, 1, columns), torch.randn(rows, 1, hidden)
    return [("x W_ih^T", 2 * rows * inputs * columns, lambda: ext.project(x, weight.t())),
            ("d W_ih", 2 * rows * inputs * columns, lambda: ext.project(d, weight)),
            ("dW_ih", 2 * rows * inputs * columns, lambda: ext.weight_grad([d], x, None)),
            ("dW_hh", 2 * rows * hidden * columns,
             lambda: ext.weight_grad([d], states, states[0]))]


def on_library(ext, library: bool, call) -> None:
    ext.set_onednn_products(library)
    call()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=6, help="calls of each per timed block")
    parser.add_argument("--output", default="large_products")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ext = native.extension_for(torch.zeros(1))
    if ext is None or not torch.backends.mkldnn.is_available():
        raise SystemExit("large_products: needs the compiled loops and a torch with oneDNN")
    clock = CLOCKS["cpu" if args.threads == 1 else "wall"]
    rows, record = [], []
    for key, shape in SHAPES.items():
        for name, flops, call in products(ext, *shape):
            mkl, onednn = (functools.partial(on_library, ext, library, call)
                           for library in (False, True))
            paired_block(mkl, onednn, 2, clock)  # warm-up
            pairs = [paired_block(mkl, onednn, args.calls, clock) for _ in range(args.rounds)]
            mkl_s = statistics.median(p[0] for p in pairs)
            onednn_s = statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[0] / p[1] for p in pairs)
            record.append({"config": key, "product": name, "shape": shape,
                           "torch_mm_ms": mkl_s * 1e3, "onednn_ms": onednn_s * 1e3,
                           "torch_mm_gflops": flops / mkl_s / 1e9,
                           "onednn_gflops": flops / onednn_s / 1e9, "speedup": ratio})
            rows.append([f"({key}) {shape[0]} rows, {shape[1]} in, {shape[2]} out", name,
                         f"{mkl_s * 1e3:.2f} ({flops / mkl_s / 1e9:.0f})",
                         f"{onednn_s * 1e3:.2f} ({flops / onednn_s / 1e9:.0f})",
                         f"**{ratio:.2f}**"])
            print(rows[-1], flush=True)
    ext.set_onednn_products(native.onednn_products())
    clock_name = "CPU" if args.threads == 1 else "wall"
    markdown = [f"# The large products around the loops: torch.mm against oneDNN, "
                f"{args.threads} thread{'s' if args.threads > 1 else ''}", "",
                f"{clock_name} ms (GFLOP/s) per product, medians of {args.rounds} ABBA rounds "
                f"of {args.calls} calls; this machine's default: "
                f"{'oneDNN' if native.onednn_products() else 'torch.mm'}.", ""]
    markdown += records.table_lines(["layer", "product", "torch.mm", "oneDNN", "speed-up"], rows)
    records.save_record(args.output, {"products": record}, "\n".join(markdown))


if __name__ == "__main__":
    main()
