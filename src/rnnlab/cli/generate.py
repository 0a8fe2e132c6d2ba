"""`rnnlab sample RUN_DIR`: stream novel text from a trained language model."""

from __future__ import annotations

import argparse
import sys

from rnnlab.config import checked_type


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sample", help="generate text from a language-model run")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--prime", default="", help="text to start from (default: a line start)")
    parser.add_argument("--length", type=checked_type(int, ge=1), default=500,
                        help="tokens to generate")
    parser.add_argument("--temperature", type=checked_type(float, gt=0.0), default=1.0,
                        help="<1 sharper and safer, >1 more random")
    parser.add_argument("--top-k", type=checked_type(int, ge=0), default=0,
                        help="sample among the k most likely")
    parser.add_argument("--top-p", type=checked_type(float, gt=0.0, le=1.0), default=1.0,
                        help="nucleus sampling threshold")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely")
    parser.add_argument("--seed", type=checked_type(int, ge=0), default=None,
                        help="seed for reproducible samples")
    parser.add_argument("--num-samples", type=checked_type(int, ge=1), default=1)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rnnlab.errors import RnnlabError
    from rnnlab.tasks.lm.run import LMRun

    if args.length < 1 or args.num_samples < 1:
        raise RnnlabError("--length and --num-samples must be at least 1")
    lm = LMRun(args.run_dir, args.device)
    for index in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {index + 1} ---")
        sys.stdout.write(args.prime)
        seed = None if args.seed is None else args.seed + index
        pieces = lm.generate(args.prime, args.length, seed=seed, temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p, greedy=args.greedy)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0
