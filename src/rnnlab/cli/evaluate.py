"""`rnnlab eval RUN_DIR` and `rnnlab score RUN_DIR`: metrics of a split, probability of text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnlab.cli.tasks import TASK_MODULES, available, task_module
from rnnlab.config import checked_type

ENSEMBLE_TASKS = ("classify", "tag")


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate a run on a split of its corpus")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ev.add_argument("--data-dir")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--format", choices=("text", "json"), default="text")
    ev.add_argument("--threads", type=checked_type(int, ge=0), default=0,
                    help="torch CPU threads (default: torch's choice)")
    ev.add_argument("--ensemble", nargs="+", metavar="RUN_DIR", default=[],
                    help="classifier and tagger runs: more runs of the same labels and data, "
                         "evaluated as one model that decides by their mean scores")
    for name in available(TASK_MODULES):
        hook = getattr(task_module(name), "add_eval_arguments", None)
        if hook is not None:
            hook(ev)
    ev.set_defaults(handler=run_eval)

    score = subparsers.add_parser(
        "score", help="log-probability and perplexity of sentences under a language model")
    score.add_argument("run_dir", metavar="RUN_DIR")
    source = score.add_mutually_exclusive_group()
    source.add_argument("--text", help="one text to score")
    source.add_argument("--file", help="score each line of this file ('-': stdin)")
    score.add_argument("--verbose", action="store_true", help="also print each token's log-prob")
    score.add_argument("--device", default="auto")
    score.add_argument("--format", choices=("text", "json"), default="text")
    score.set_defaults(handler=run_score)


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from rnnlab.tasks.lm.run import LMRun

    if args.threads:
        torch.set_num_threads(args.threads)
    task = _run_task(args.run_dir)
    if args.ensemble and task not in ENSEMBLE_TASKS:
        from rnnlab.errors import RnnlabError

        raise RnnlabError(f"--ensemble is for classifier and tagger runs; {args.run_dir} is a "
                          f"{task or 'language model'} run")
    if task in TASK_MODULES and task in available([task]):
        return int(task_module(task).run_eval(args) or 0)

    result = LMRun(args.run_dir, args.device).evaluate(args.split, args.data_dir)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def _lines(args: argparse.Namespace) -> list[str]:
    from rnnlab.data.io import read_text
    from rnnlab.errors import RnnlabError

    if args.text is not None:
        return [args.text]
    if args.file in (None, "-"):
        text = sys.stdin.read()
    else:
        text = read_text(args.file)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RnnlabError("nothing to score: the input has no non-empty line")
    return lines


def run_score(args: argparse.Namespace) -> int:
    from rnnlab.tasks.lm.run import LMRun

    lm = LMRun(args.run_dir, args.device)
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


def _run_task(run_dir: str) -> str | None:
    """The `task` recorded in a run's config.json (LMRun reports a missing or bad run itself)."""
    from rnnlab.training.checkpoint import CONFIG_FILE, read_json

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    info = read_json(path)
    return info.get("task") if isinstance(info, dict) else None
