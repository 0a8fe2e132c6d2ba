"""`rnnlab eval RUN_DIR`: the metrics of a run (of any task) on a split of its corpus."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import (
    DATA_DIR_HELP,
    add_device,
    add_format,
    add_threads,
    note_split,
    print_result,
    set_threads,
)
from rnnlab.tasks.registry import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="evaluate a run on a split of its corpus")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--split", default=None, choices=("train", "valid", "test"),
                    help="which split (default: the last the corpus has: test, else valid)")
    ev.add_argument("--data-dir", help=DATA_DIR_HELP)
    add_device(ev)
    add_format(ev)
    add_threads(ev)
    ensembles = " and ".join(spec.noun for spec in TASKS.values() if spec.ensemble)
    ev.add_argument("--ensemble", nargs="+", metavar="RUN_DIR", default=[],
                    help=f"{ensembles} runs: more runs of the same labels and data, "
                         "evaluated as one model that decides by their mean scores")
    for spec in TASKS.values():
        hook = getattr(spec.cli_module(), "add_eval_arguments", None)
        if hook is not None:
            hook(ev)
    ev.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """The run's task decides: its CLI module's own `run_eval` if it has one, else the
    predictor's (or ensemble's) `evaluate(split, data_dir)`, printed as key: value lines."""
    from rnnlab.errors import RnnlabError
    from rnnlab.tasks.registry import get_task, resolve, run_task

    set_threads(args)
    spec = get_task(run_task(args.run_dir))
    if args.ensemble and not spec.ensemble:
        kinds = " and ".join(other.noun for other in TASKS.values() if other.ensemble)
        raise RnnlabError(f"--ensemble is for {kinds} runs; {args.run_dir} is a {spec.noun} run")
    own = getattr(spec.cli_module(), "run_eval", None)
    if own is not None:
        return int(own(args) or 0)
    if args.ensemble:
        model = resolve(spec.ensemble)([args.run_dir, *args.ensemble], args.device)
    else:
        model = resolve(spec.predictor)(args.run_dir, args.device)
    result = model.evaluate(args.split, args.data_dir)
    note_split(args, result)
    print_result(result, args.format)
    return 0
