"""How fast a GRU's fwd+bwd could be if it did nothing but its matrix products, against
torch.nn.GRU: the ceiling on a GRU's speed-up over torch's on this machine, for given kernels.

Per layer and direction, a training step must run the input projection of all steps, one
(B, H) x (H, 3H) product per step forward, one (B, 3H) x (3H, H) product per step backward, and
three products over all T*B rows for dx, dW_ih and dW_hh. Each is timed here alone with torch.mm
(MKL), then torch.nn.GRU's whole fwd+bwd, alternating, on the CPU-time clock at one thread.
The ratio torch / products is the speed-up a GRU would reach with free gate arithmetic, free
memory traffic and free Python: issue 21's 1.5x on configs (b), (c) needs it well above 1.5.
With torch.mm's per-step products this was no ceiling for rnnlab's loops, whose per-step products
run a faster kernel (csrc/step_product.h): the last column times those with it.

    python benchmarks/gru_product_bound.py --configs bc

Writes benchmarks/results/gru_product_bound.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from types import ModuleType

import torch
from torch import nn

import records
from recurrent_speed import config_shape
from rnnlab.nn import native

# (batch, steps, layers, hidden, input): configs (a)-(c) of recurrent_speed.py
CONFIGS = {key: config_shape(key) for key in "abc"}


def cpu_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    started = time.process_time()
    for _ in range(repeats):
        call()
    return (time.process_time() - started) / repeats * 1e3


def layer_products_ms(batch: int, steps: int, width: int, hidden: int, repeats: int,
                      kernel: ModuleType | None = None) -> float:
    """CPU ms of the matrix products of one GRU layer's fwd+bwd, each product timed alone; the
    per-step ones with torch.mm, or with the compiled loops' step product (`kernel`: the
    extension, its weight layout of each sequence included)."""
    rows, gates = batch * steps, 3 * hidden
    x, d, states = torch.randn(rows, width), torch.randn(rows, gates), torch.randn(rows, hidden)
    w_ih, w_hh = torch.randn(gates, width), torch.randn(gates, hidden)
    w_ih_t, w_hh_t = w_ih.t().contiguous(), w_hh.t().contiguous()
    h, d_step, base = torch.randn(batch, hidden), torch.randn(batch, gates), torch.randn(
        batch, hidden)
    if kernel is None:
        per_step = (steps * cpu_ms(lambda: h.mm(w_hh_t), 20 * repeats)  # h_{t-1} W_hh^T
                    + steps * cpu_ms(lambda: d_step.mm(w_hh), 20 * repeats))  # d_pre_t W_hh
    else:
        per_step = (cpu_ms(lambda: kernel.step_product(h, w_hh, True, None, steps), repeats)
                    + cpu_ms(lambda: kernel.step_product(d_step, w_hh, False, base, steps),
                             repeats))
    return (cpu_ms(lambda: x.mm(w_ih_t), repeats)  # the input projection of all steps
            + per_step
            + cpu_ms(lambda: d.mm(w_ih), repeats)  # dx
            + cpu_ms(lambda: d.t().mm(x), repeats)  # dW_ih
            + cpu_ms(lambda: d.t().mm(states), repeats))  # dW_hh


def products_ms(batch: int, steps: int, layers: int, hidden: int, inputs: int,
                repeats: int, kernel: ModuleType | None = None) -> float:
    return sum(layer_products_ms(batch, steps, inputs if layer == 0 else hidden, hidden, repeats,
                                 kernel) for layer in range(layers))


def torch_gru_ms(batch: int, steps: int, layers: int, hidden: int, inputs: int,
                 repeats: int) -> float:
    torch.manual_seed(0)
    model = nn.GRU(inputs, hidden, layers)
    x = torch.randn(steps, batch, inputs, requires_grad=True)
    projection = torch.randn(steps, batch, hidden)

    def step() -> None:
        (model(x)[0] * projection).sum().backward()
        for t in (x, *model.parameters()):
            t.grad = None

    return cpu_ms(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="bc", help="letters of CONFIGS")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--repeats", type=int, default=5, help="calls per timed block")
    args = parser.parse_args()
    torch.set_num_threads(1)
    kernel = native.extension_for(torch.zeros(1))
    if kernel is not None and not kernel.step_product_applies(torch.zeros(4, 4), 4):
        kernel = None
    rows = []
    for key in args.configs:
        shape = CONFIGS[key]
        products, with_kernel, reference = [], [], []
        for _ in range(args.rounds):  # alternating, so drift hits all alike
            products.append(products_ms(*shape, args.repeats))
            if kernel is not None:
                with_kernel.append(products_ms(*shape, args.repeats, kernel))
            reference.append(torch_gru_ms(*shape, args.repeats))
        own, torch_s = statistics.median(products), statistics.median(reference)
        row = {"config": key, "B, T, layers, H, I": shape, "products ms": round(own, 1),
               "torch.nn.GRU ms": round(torch_s, 1), "ceiling": round(torch_s / own, 2)}
        if with_kernel:
            fast = statistics.median(with_kernel)
            row |= {"products with the step kernel ms": round(fast, 1),
                    "ceiling with the step kernel": round(torch_s / fast, 2)}
        rows.append(row)
    lines = ["# The ceiling on a GRU's speed-up over torch.nn.GRU: its matrix products alone",
             "", f"One thread, CPU-time clock, medians of {args.rounds} alternating rounds. "
             "Per-step products by torch.mm, or by the compiled loops' step product "
             "(csrc/step_product.h; '-' where it does not run here).", ""]
    lines += records.table_lines(
        ["config (B, T, layers, H, I)", "products only, ms", "torch.nn.GRU fwd+bwd, ms",
         "ceiling (ratio)", "products, step kernel, ms", "ceiling with it"],
        [[f"{r['config']} {r['B, T, layers, H, I']}", r["products ms"], r["torch.nn.GRU ms"],
          r["ceiling"], r.get("products with the step kernel ms", "-"),
          r.get("ceiling with the step kernel", "-")] for r in rows])
    records.save_record("gru_product_bound", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
