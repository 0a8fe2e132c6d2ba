"""`rnnlab sample RUN_DIR` and `rnnlab score RUN_DIR`: the commands of language-model runs
(neural and n-gram alike)."""

from __future__ import annotations

import argparse
import json
import sys

from rnnlab.cli.common import add_device, add_format, read_input
from rnnlab.config import checked_type


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sample", help="generate text from a language-model run")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--prime", default="",
                        help="text to start from (default: the start of a line, as in "
                             "training: a newline for character models, the sentence start "
                             "<eos> for word and subword models)")
    parser.add_argument("--length", type=checked_type(int, ge=1), default=500,
                        help="tokens to generate")
    parser.add_argument("--temperature", type=checked_type(float, gt=0.0), default=1.0,
                        help="<1 sharper and safer, >1 more random")
    parser.add_argument("--top-k", type=checked_type(int, ge=0), default=0,
                        help="sample among the k most likely (0: all)")
    parser.add_argument("--top-p", type=checked_type(float, gt=0.0, le=1.0), default=1.0,
                        help="nucleus sampling threshold")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely")
    parser.add_argument("--seed", type=checked_type(int, ge=0), default=None,
                        help="seed for reproducible samples")
    parser.add_argument("--num-samples", type=checked_type(int, ge=1), default=1,
                        help="independent samples to print")
    add_device(parser)
    parser.set_defaults(handler=run_sample)

    score = subparsers.add_parser(
        "score", help="log-probability and perplexity of sentences under a language model")
    score.description = ("Text output: a header line, then per line its log-probability "
                         "(natural log, the sentence's closing <eos> included at word level), "
                         "perplexity and text, tab-separated; --verbose adds each token's.")
    score.add_argument("run_dir", metavar="RUN_DIR")
    source = score.add_mutually_exclusive_group()
    source.add_argument("--text", help="one text to score")
    source.add_argument("--file", help="score each line of this file ('-': stdin)")
    score.add_argument("--verbose", action="store_true", help="also print each token's log-prob")
    add_device(score)
    add_format(score)
    score.set_defaults(handler=run_score)


def run_sample(args: argparse.Namespace) -> int:
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


def _lines(args: argparse.Namespace) -> list[str]:
    from rnnlab.errors import RnnlabError

    text = read_input(args.file, args.text)
    lines = [args.text] if args.text is not None else [
        line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RnnlabError("nothing to score: the input has no non-empty line")
    return lines


def run_score(args: argparse.Namespace) -> int:
    from rnnlab.tasks.lm.run import LMRun

    lm = LMRun(args.run_dir, args.device)
    if args.format == "text":  # a TSV header: what the columns are
        print("log_prob\tperplexity\ttext")
    for line in _lines(args):
        result = lm.score(line)
        if args.format == "json":
            record = {"text": line, "log_prob": result.total, "tokens": len(result.tokens),
                      "perplexity": result.perplexity}
            if args.verbose:
                record["token_log_probs"] = list(zip(result.tokens, result.log_probs,
                                                     strict=True))
            print(json.dumps(record, ensure_ascii=False))
            continue
        print(f"{result.total:.4f}\t{result.perplexity:.2f}\t{line}")
        if args.verbose:
            for token, log_prob in zip(result.tokens, result.log_probs, strict=True):
                print(f"\t{log_prob:9.4f}\t{token!r}")
    return 0
