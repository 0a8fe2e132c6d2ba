"""`rnnlab train {lm,ngram}`: flags come from the task's config dataclasses."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rnnlab.cli.tasks import TASK_MODULES, available, task_module
from rnnlab.config import add_dataclass_arguments, dataclass_from_args
from rnnlab.errors import RnnlabError
from rnnlab.training.config import TrainConfig


def common_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--run-dir", help=f"where the run is written (default: runs/{task}-TIME)")
    group.add_argument("--data-dir", help="data directory (default: $RNNLAB_DATA, else "
                       "../shared/data beside the checkout)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --run-dir from its latest checkpoint")
    group.add_argument("--preset", help="a named configuration (flags you give override it)")
    group.add_argument("--config", help="a saved config.json to start from")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    group.add_argument("--format", choices=("text", "json"), default="text")


def register(subparsers: argparse._SubParsersAction) -> None:
    from rnnlab.tasks.lm.config import LMConfig, LMDataConfig
    from rnnlab.tasks.lm.presets import PRESETS
    from rnnlab.tasks.ngram import NGramConfig

    train = subparsers.add_parser("train", help="train a model into a run directory")
    tasks = train.add_subparsers(dest="train_task", metavar="TASK")

    lm = tasks.add_parser("lm", help="recurrent language model (char, word or subword)",
                          description=f"Presets: {', '.join(PRESETS)}.")
    common_arguments(lm, "lm")
    add_dataclass_arguments(lm, LMConfig, "model and data")
    add_dataclass_arguments(lm, TrainConfig, "training")
    lm.set_defaults(handler=run_lm)

    ngram = tasks.add_parser("ngram", help="n-gram language model (add-k or Kneser-Ney)")
    common_arguments(ngram, "ngram")
    add_dataclass_arguments(ngram, LMDataConfig, "data")
    add_dataclass_arguments(ngram, NGramConfig, "n-gram")
    ngram.set_defaults(handler=run_ngram)

    for name in available(TASK_MODULES):
        task_module(name).register_train(tasks)


def add_train_parser(tasks: argparse._SubParsersAction, task: str, config_cls: type,
                     handler: Any, **parser_kwargs: Any) -> argparse.ArgumentParser:
    """`rnnlab train <task>`: the run flags, then one flag per field of the task's config and of
    TrainConfig."""
    parser = tasks.add_parser(task, **parser_kwargs)
    common_arguments(parser, task)
    add_dataclass_arguments(parser, config_cls, "model and data")
    add_dataclass_arguments(parser, TrainConfig, "training")
    parser.set_defaults(handler=handler)
    return parser


def config_bases(args: argparse.Namespace, presets: dict[str, dict[str, Any]],
                classes: tuple[type, ...]) -> list[dict[str, Any]]:
    """Per class, the values of the preset and the --config file (flags are applied later)."""
    merged: dict[str, Any] = {}
    if args.preset:
        if args.preset not in presets:
            raise RnnlabError(f"unknown preset {args.preset!r}; known: {', '.join(presets)}")
        merged.update(presets[args.preset])
    if args.config:
        from rnnlab.training.checkpoint import read_json

        saved = read_json(Path(args.config))
        for key in ("config", "train"):
            merged.update(saved.get(key, {}))
    bases = []
    for cls in classes:
        names = set(cls.__dataclass_fields__)
        bases.append({k: v for k, v in merged.items() if k in names})
    return bases


def run_dir_from_args(args: argparse.Namespace, task: str) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    if args.resume:
        raise RnnlabError("--resume needs the --run-dir of the run to continue")
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_summary(summary: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(summary, indent=2))
        return
    for note in summary.pop("notes", []):
        print(f"note: {note}")
    for key, value in summary.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def run_configs(args: argparse.Namespace, task: str, config_cls: type,
                presets: dict[str, dict[str, Any]] | None = None,
                **base_overrides: Any) -> tuple[Path, Any, TrainConfig]:
    """The run directory and the (task, training) configs of `rnnlab train <task>`: preset, then
    --config file, then `base_overrides`, then the flags; a resumed run keeps its saved training
    config (flags still override it)."""
    run_dir = run_dir_from_args(args, task)
    model_base, train_base = config_bases(args, presets or {}, (config_cls, TrainConfig))
    model_base.update(base_overrides)
    if args.resume:
        from rnnlab.training.checkpoint import read_json

        saved = read_json(run_dir / "config.json")
        model_base, train_base = saved["config"], saved["train"]  # flags change what they name
    return (run_dir, dataclass_from_args(config_cls, args, model_base),
            dataclass_from_args(TrainConfig, args, train_base))


def run_lm(args: argparse.Namespace) -> int:
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.presets import PRESETS
    from rnnlab.tasks.lm.train import train_lm

    run_dir, config, train_config = run_configs(args, "lm", LMConfig, PRESETS)
    summary = train_lm(config, train_config, run_dir, data_dir=args.data_dir,
                       resume=args.resume, show_progress=not args.quiet)
    print_summary(summary, args.format)
    return 0


def run_ngram(args: argparse.Namespace) -> int:
    from rnnlab.tasks.lm.config import LMDataConfig
    from rnnlab.tasks.ngram import NGramConfig
    from rnnlab.tasks.ngram_train import train_ngram

    if args.resume:
        raise RnnlabError("an n-gram model trains in one pass: --resume does not apply")
    run_dir = run_dir_from_args(args, "ngram")
    data_base, ngram_base = config_bases(args, {}, (LMDataConfig, NGramConfig))
    data = dataclass_from_args(LMDataConfig, args, data_base)
    config = dataclass_from_args(NGramConfig, args, ngram_base)
    summary = train_ngram(data, config, run_dir, data_dir=args.data_dir)
    print_summary(summary, args.format)
    return 0

