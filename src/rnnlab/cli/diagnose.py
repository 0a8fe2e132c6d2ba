"""`rnnlab diagnose {gradients,memory,cells}`: look inside recurrent networks (rnnlab.diagnostics).

Each command writes JSON, PNG (and markdown or HTML) files to --out and prints a summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnlab.cli.common import DATA_DIR_HELP
from rnnlab.config import checked_type


def register(subparsers: argparse._SubParsersAction) -> None:
    from rnnlab.config import add_dataclass_arguments
    from rnnlab.diagnostics.gradients import GradientConfig
    from rnnlab.diagnostics.memory import MEMORY_CELLS, MEMORY_LENGTHS, MemoryConfig
    from rnnlab.diagnostics.options import integers, names
    from rnnlab.nn.factory import CELLS

    parser = subparsers.add_parser("diagnose", help="gradient flow, long-range memory, and what "
                                   "the units of a trained model track")
    commands = parser.add_subparsers(dest="diagnosis", metavar="DIAGNOSIS", required=True)
    cell_help = f"comma-separated cells ({', '.join(CELLS)})"

    grad = commands.add_parser("gradients", help="||dL/dh_t|| for a loss on the last step")
    add_dataclass_arguments(grad, GradientConfig, "study")
    grad.add_argument("--run-dir", action="append", default=[], metavar="RUN",
                      help="also measure a trained language model (repeatable)")
    grad.add_argument("--text", help="text for --run-dir windows (default: the run's valid split)")
    grad.add_argument("--data-dir", help=DATA_DIR_HELP)
    grad.set_defaults(handler=run_gradients)

    mem = commands.add_parser("memory", help="longest T each cell solves on a synthetic task")
    mem.add_argument("--cells", type=names, default=MEMORY_CELLS, help=cell_help)
    mem.add_argument("--lengths", type=integers, default=MEMORY_LENGTHS, help="values of T")
    add_dataclass_arguments(mem, MemoryConfig, "training")
    mem.add_argument("--keep-going", action="store_true",
                     help="train longer T even after a cell failed a shorter one")
    mem.set_defaults(handler=run_memory)

    cells = commands.add_parser("cells", help="units of a char LM that track text features")
    cells.add_argument("run_dir", metavar="RUN_DIR")
    cells.add_argument("--text", required=True, help="text file to read the model over")
    cells.add_argument("--unit", type=checked_type(int, ge=0),
                       help="unit to colour the text by (default: the best)")
    cells.add_argument("--quantity", help="which recorded quantity, e.g. l1.c, l0.f, l1.h")
    cells.add_argument("--max-chars", type=checked_type(int, ge=1), default=20000,
                       help="read at most this many characters of --text")
    cells.set_defaults(handler=run_cells)

    for sub in (grad, mem, cells):
        sub.add_argument("--out", required=True, type=Path, help="folder for the files")
        sub.add_argument("--threads", type=int, default=None,
                         help="torch CPU threads (default: torch's choice)")
        sub.add_argument("--format", choices=("text", "json"), default="text",
                         help="print the summary as text lines or as JSON")


def _setup(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def run_gradients(args: argparse.Namespace) -> int:
    from rnnlab.config import dataclass_from_args, to_dict
    from rnnlab.diagnostics.gradients import GradientConfig
    from rnnlab.diagnostics.report import gradients_report

    _setup(args)
    config = dataclass_from_args(GradientConfig, args)
    options = {k: v for k, v in to_dict(config).items() if k != "cells"}
    result = gradients_report(list(config.cells), args.out, run_dirs=tuple(args.run_dir),
                              text_file=args.text, data_dir=args.data_dir, **options)
    if args.format == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"|dL/dh_1| / |dL/dh_T| at T = {config.length}:")
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

    from rnnlab.config import dataclass_from_args
    from rnnlab.diagnostics.memory import MemoryConfig
    from rnnlab.diagnostics.report import memory_report

    _setup(args)
    config = dataclass_from_args(MemoryConfig, args, {"stop_after_failure": not args.keep_going})

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
