"""The large products around the compiled loops on torch.mm (MKL), oneDNN's linear, and the
step product's own kernel.

Around each time loop, a layer runs a few large products over all T*B rows: its input
projection x W_ih^T, the gradient d W_ih, and dW_ih, dW_hh (d^T x). native.py sends them to
oneDNN on non-Intel CPUs with AVX-512, where MKL runs an AVX2 kernel, and there dW (x at least
128 wide) to the step product's kernel (csrc/step_product.h: `multiply_rows`). This times
torch.mm against oneDNN, and oneDNN against the kernel, on the shapes of recurrent_speed.py's
configs, alternating call by call (ABBA), the loops' own way of calling each (`project`,
`weight_grad`, with their buffers; the kernel's projections through `kernel_product`, into a
buffer, which the loops do not use):

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
    """(name, flops, library call, kernel call) of each large product of one layer's fwd+bwd."""
    x, weight = torch.randn(rows, 1, inputs), torch.randn(columns, inputs)
    d, states = torch.randn(rows, 1, columns), torch.randn(rows, 1, hidden)
    projected, back = torch.empty(rows, columns), torch.empty(rows, inputs)
    dw_ih = lambda: ext.weight_grad([d], x, None)  # noqa: E731
    dw_hh = lambda: ext.weight_grad([d], states, states[0])  # noqa: E731
    return [("x W_ih^T", 2 * rows * inputs * columns, lambda: ext.project(x, weight.t()),
             lambda: ext.kernel_product(x[:, 0], weight.t(), projected)),
            ("d W_ih", 2 * rows * inputs * columns, lambda: ext.project(d, weight),
             lambda: ext.kernel_product(d[:, 0], weight, back)),
            ("dW_ih", 2 * rows * inputs * columns, dw_ih, dw_ih),
            ("dW_hh", 2 * rows * hidden * columns, dw_hh, dw_hh)]


def on_library(ext, library: str, call) -> None:
    """`call` with the large products on torch.mm, oneDNN, or oneDNN with dW on the kernel (at
    every width of x)."""
    ext.set_onednn_products(library != "torch.mm")
    ext.set_kernel_weight_grads(library == "kernel")
    ext.set_kernel_min_width(1)
    call()


def timed(first, second, args, clock) -> tuple[float, float, float]:
    """Median seconds of each and median ratio first/second over ABBA rounds."""
    paired_block(first, second, 2, clock)  # warm-up
    pairs = [paired_block(first, second, args.calls, clock) for _ in range(args.rounds)]
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            statistics.median(p[0] / p[1] for p in pairs))


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
    kernel = ext.step_product_applies(torch.zeros(4, 4), 4)
    before = ext.kernel_min_width()
    for key, shape in SHAPES.items():
        for name, flops, call, kernel_call in products(ext, *shape):
            mkl, onednn = (functools.partial(on_library, ext, library, call)
                           for library in ("torch.mm", "onednn"))
            mkl_s, onednn_s, ratio = timed(mkl, onednn, args, clock)
            kernel_s = kernel_ratio = onednn_again = None
            if kernel:
                on_kernel = functools.partial(on_library, ext, "kernel", kernel_call)
                onednn_again, kernel_s, kernel_ratio = timed(onednn, on_kernel, args, clock)
            record.append({"config": key, "product": name, "shape": shape,
                           "torch_mm_ms": mkl_s * 1e3, "onednn_ms": onednn_s * 1e3,
                           "torch_mm_gflops": flops / mkl_s / 1e9,
                           "onednn_gflops": flops / onednn_s / 1e9, "speedup": ratio,
                           "kernel_ms": kernel_s and kernel_s * 1e3,
                           "kernel_gflops": kernel_s and flops / kernel_s / 1e9,
                           "kernel_speedup_over_onednn": kernel_ratio,
                           "onednn_beside_kernel_ms": onednn_again and onednn_again * 1e3})
            rows.append([f"({key}) {shape[0]} rows, {shape[1]} in, {shape[2]} out", name,
                         f"{mkl_s * 1e3:.2f} ({flops / mkl_s / 1e9:.0f})",
                         f"{onednn_s * 1e3:.2f} ({flops / onednn_s / 1e9:.0f})",
                         f"**{ratio:.2f}**",
                         "-" if kernel_s is None else
                         f"{kernel_s * 1e3:.2f} ({flops / kernel_s / 1e9:.0f}) against "
                         f"{onednn_again * 1e3:.2f}",
                         "-" if kernel_ratio is None else f"**{kernel_ratio:.2f}**"])
            print(rows[-1], flush=True)
    ext.set_onednn_products(native.onednn_products())
    ext.set_kernel_weight_grads(native.kernel_weight_grads())
    ext.set_kernel_min_width(before)
    clock_name = "CPU" if args.threads == 1 else "wall"
    default = "torch.mm" if not native.onednn_products() else (
        "oneDNN, dW from 128 wide on the kernel" if native.kernel_weight_grads() else "oneDNN")
    markdown = [f"# The large products around the loops: torch.mm, oneDNN and the step "
                f"product's kernel, {args.threads} thread{'s' if args.threads > 1 else ''}", "",
                f"{clock_name} ms (GFLOP/s) per product, medians of {args.rounds} ABBA rounds "
                f"of {args.calls} calls: torch.mm against oneDNN, then the kernel against "
                f"oneDNN once more (its time in those rounds beside the kernel's); the "
                f"kernel's projections into a buffer, as the loops do not run them; this "
                f"machine's default: {default}.", ""]
    markdown += records.table_lines(["layer", "product", "torch.mm", "oneDNN",
                                     "oneDNN's speed-up", "kernel", "kernel / oneDNN"], rows)
    records.save_record(args.output, {"products": record}, "\n".join(markdown))


if __name__ == "__main__":
    main()
