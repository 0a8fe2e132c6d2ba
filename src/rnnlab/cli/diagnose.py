"""`rnnlab diagnose {gradients,memory,cells}`: look inside recurrent networks (rnnlab.diagnostics).

Each command writes JSON, PNG (and markdown or HTML) files to --out and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnlab.config import checked_type


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers like 10,20,50: {text!r}") from err


def register(subparsers: argparse._SubParsersAction) -> None:
    from rnnlab.nn.factory import CELLS

    parser = subparsers.add_parser("diagnose", help="gradient flow, long-range memory, and what "
                                   "the units of a trained model track")
    commands = parser.add_subparsers(dest="diagnosis", metavar="DIAGNOSIS", required=True)
    cell_help = f"comma-separated cells ({', '.join(CELLS)})"

    grad = commands.add_parser("gradients", help="||dL/dh_t|| for a loss on the last step")
    grad.add_argument("--cells", type=_names, default=["rnn", "lstm", "gru"], help=cell_help)
    grad.add_argument("--length", type=checked_type(int, ge=1), default=100, help="time steps T")
    grad.add_argument("--hidden", type=checked_type(int, ge=1), default=64)
    grad.add_argument("--input-size", type=checked_type(int, ge=1), default=32)
    grad.add_argument("--batch", type=checked_type(int, ge=1), default=32)
    grad.add_argument("--explode-gain", type=checked_type(float, gt=0.0), default=2.0,
                      help="singular value of W_hh in the exploding-RNN variant")
    grad.add_argument("--forget-bias", type=checked_type(float), default=1.0,
                      help="LSTM forget-gate bias of the forget-bias variant")
    grad.add_argument("--max-norm", type=checked_type(float, gt=0.0), default=1.0,
                      help="clipping threshold shown")
    grad.add_argument("--run-dir", action="append", default=[], metavar="RUN",
                      help="also measure a trained language model (repeatable)")
    grad.add_argument("--text", help="text for --run-dir windows (default: the run's valid split)")
    grad.add_argument("--data-dir")
    grad.set_defaults(handler=run_gradients)

    mem = commands.add_parser("memory", help="longest T each cell solves on a synthetic task")
    mem.add_argument("--task", choices=("adding", "copy"), default="adding")
    mem.add_argument("--cells", type=_names,
                     default=["rnn", "lstm", "gru", "gru-minimal", "lstm-peephole"],
                     help=cell_help)
    mem.add_argument("--lengths", type=_ints, default=[5, 10, 20, 40, 80], help="values of T")
    mem.add_argument("--steps", type=checked_type(int, ge=1), default=2000,
                     help="training step budget per run")
    mem.add_argument("--parameters", type=checked_type(int, ge=1), default=3000,
                     help="parameters per model")
    mem.add_argument("--batch", type=checked_type(int, ge=1), default=32)
    mem.add_argument("--lr", type=checked_type(float, gt=0.0), default=1e-2,
                     help="Adam learning rate")
    mem.add_argument("--eval-every", type=checked_type(int, ge=1), default=100)
    mem.add_argument("--forget-bias", type=checked_type(float), default=0.0,
                     help="LSTM forget-gate bias at initialisation")
    mem.add_argument("--keep-going", action="store_true",
                     help="train longer T even after a cell failed a shorter one")
    mem.set_defaults(handler=run_memory)

    cells = commands.add_parser("cells", help="units of a char LM that track text features")
    cells.add_argument("run_dir", metavar="RUN_DIR")
    cells.add_argument("--text", required=True, help="text file to read the model over")
    cells.add_argument("--unit", type=checked_type(int, ge=0),
                       help="unit to colour the text by (default: the best)")
    cells.add_argument("--quantity", help="which recorded quantity, e.g. l1.c, l0.f, l1.h")
    cells.add_argument("--max-chars", type=checked_type(int, ge=1), default=20000)
    cells.set_defaults(handler=run_cells)

    for sub in (grad, mem):
        sub.add_argument("--seed", type=checked_type(int, ge=0), default=0)
    for sub in (grad, mem, cells):
        sub.add_argument("--out", required=True, type=Path, help="folder for the files")
        sub.add_argument("--threads", type=int, default=None, help="torch threads")
        sub.add_argument("--format", choices=("text", "json"), default="text")


def _setup(args: argparse.Namespace) -> None:
    import torch

    from rnnlab.errors import RnnlabError
    from rnnlab.nn.factory import CELLS

    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = [c for c in getattr(args, "cells", []) if c not in CELLS]
    if unknown:
        raise RnnlabError(f"unknown cell {unknown[0]!r}; choose from {', '.join(CELLS)}")
    for name in ("length", "steps", "batch", "max_chars"):
        if getattr(args, name, 1) < 1:
            raise RnnlabError(f"--{name.replace('_', '-')} must be at least 1")


def run_gradients(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.report import gradients_report

    _setup(args)
    result = gradients_report(
        args.cells, args.out, run_dirs=tuple(args.run_dir), text_file=args.text,
        data_dir=args.data_dir, length=args.length, hidden=args.hidden,
        input_size=args.input_size, batch=args.batch, seed=args.seed,
        explode_gain=args.explode_gain, forget_bias=args.forget_bias, max_norm=args.max_norm)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"|dL/dh_1| / |dL/dh_T| at T = {args.length}:")
    for curve in result["curves"] + result["variants"]:
        print(f"  {curve['label']:<32} {curve['ratio']:.3g}")
    clip = result["clipping"]
    print(f"clipping ({clip['layer']}): update norm {clip['pre_norm']:.4g} -> "
          f"{clip['post_norm']:.4g} (max {clip['max_norm']:g}), direction cosine "
          f"{clip['cosine']:.6f}")
    print("wrote " + ", ".join(result["files"]))
    return 0


def run_memory(args: argparse.Namespace) -> int:
    import sys

    from rnnlab.diagnostics.memory import MemoryConfig
    from rnnlab.diagnostics.report import memory_report

    _setup(args)
    config = MemoryConfig(task=args.task, parameters=args.parameters, steps=args.steps,
                          batch=args.batch, lr=args.lr, eval_every=args.eval_every,
                          seed=args.seed, forget_bias=args.forget_bias,
                          stop_after_failure=not args.keep_going)

    def progress(r) -> None:  # noqa: ANN001
        print(f"{r.cell} T={r.length}: {'solved' if r.solved else 'not solved'} "
              f"score {r.score:.4g} after {r.steps} steps ({r.seconds:.0f} s)", file=sys.stderr)

    result = memory_report(args.cells, args.lengths, args.out, config, progress)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(result["table"], end="")
        print("wrote " + ", ".join(result["files"]))
    return 0


def run_cells(args: argparse.Namespace) -> int:
    from rnnlab.diagnostics.report import cells_report

    _setup(args)
    result = cells_report(args.run_dir, args.text, args.out, unit=args.unit,
                          quantity=args.quantity, max_chars=args.max_chars)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"{result['chars']} characters of {result['text']}")
    for feature, matches in result["best_units"].items():
        best = ", ".join(f"{m['quantity']}[{m['unit']}] r={m['r']:+.3f}" for m in matches)
        print(f"  {feature:<17} {best}")
    for name, s in result["saturation"].items():
        print(f"  gate {name:<6} < 0.1: {s['low']:.1%}   > 0.9: {s['high']:.1%}")
    print("wrote " + ", ".join(result["files"]))
    return 0
