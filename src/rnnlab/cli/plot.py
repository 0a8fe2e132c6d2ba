"""`rnnlab plot RUN_DIR [RUN_DIR ...] --out FILE.png [--metric NAME ...]`: compare runs' curves."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="draw several runs' training and dev curves on one PNG",
        description="Read each run's log.jsonl (also while it trains) and draw the training "
                    "loss and the dev metrics of all the runs on one PNG, one colour per run.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run folders from `rnnlab train`")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--metric", nargs="+", default=None, metavar="NAME",
                        help="dev metrics to draw, one panel each, e.g. loss accuracy f1 bleu "
                             "(default: the metric each run kept its best checkpoint by)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rnnlab.plots import plot_runs

    print(f"wrote {plot_runs(args.run_dirs, args.out, args.metric)}")
    return 0
