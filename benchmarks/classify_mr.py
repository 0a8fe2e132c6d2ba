"""MR sentence polarity, 10-fold cross-validation (Kim 2014's protocol): the recurrent
classifier and the TextCNN baseline on the same seeded folds, from random embeddings.

Each fold's model early-stops on a seeded 10% of its training folds and is tested on its own
held-out fold; the table gives the mean and standard deviation over folds.

Usage: python benchmarks/classify_mr.py [--folds 10] [--models rnn cnn] [--epochs 8]
       [--patience 3] [--minutes 0] [--budget 0] [--resume] [--threads 1]
(`--budget 25` starts no fold after 25 minutes; `--resume` then goes on with the rest.)
Writes benchmarks/results/classify_mr.{json,md}; runs are kept in runs/bench-classify-mr-*.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classify_sst import parser, train_one, write_results  # noqa: E402


def main() -> None:
    p = parser()
    p.set_defaults(epochs=8, patience=3)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--budget", type=float, default=0.0,
                   help="start no new fold after this many minutes (0: none); then rerun "
                        "with --resume to train the remaining folds")
    p.add_argument("--resume", action="store_true",
                   help="continue the cross-validations in runs/ (finished folds are kept)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.report_only:
        write_results("mr", {}, std=True, variant=args.name)
        return
    results = {name: train_one(name, "mr", args, folds=args.folds) for name in args.models}
    finished = {name: summary for name, summary in results.items() if summary is not None}
    if finished:
        write_results("mr", finished, std=True, variant=args.name)


if __name__ == "__main__":
    main()
