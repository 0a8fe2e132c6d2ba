"""`rnnlab train <task>` for every task of the registry: flags come from the task's config
dataclasses, the run is made by the task's `train` function."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rnnlab.cli.common import DATA_DIR_HELP, format_value
from rnnlab.config import add_dataclass_arguments, dataclass_from_args, to_dict
from rnnlab.errors import RnnlabError
from rnnlab.tasks.registry import TASKS, TaskSpec, get_task, load_run, resolve
from rnnlab.training import distributed
from rnnlab.training.checkpoint import holds_run


def common_arguments(parser: argparse.ArgumentParser, spec: TaskSpec) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--run-dir",
                       help=f"where the run is written (default: runs/{spec.name}-TIME)")
    group.add_argument("--data-dir", help=DATA_DIR_HELP)
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --run-dir from its latest checkpoint")
    presets = spec.preset_table()
    group.add_argument("--preset", metavar="NAME",
                       help="named settings that flags you give override: "
                            + (", ".join(presets) if presets else "none for this task"))
    group.add_argument("--config", metavar="FILE",
                       help="a saved config.json (of a run of this task) to start from")
    group.add_argument("--quiet", action="store_true", help="no progress bar")
    group.add_argument("--format", choices=("text", "json"), default="text",
                       help="print the summary as text lines or as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a model into a run directory")
    tasks = train.add_subparsers(dest="train_task", metavar="TASK")
    for spec in TASKS.values():
        parser = tasks.add_parser(spec.name, help=spec.help, description=spec.description)
        common_arguments(parser, spec)
        for section in spec.config_sections():
            add_dataclass_arguments(parser, resolve(section.config), section.title)
        parser.set_defaults(handler=run_train)


def section_bases(args: argparse.Namespace, spec: TaskSpec,
                  classes: dict[str, type]) -> dict[str, dict[str, Any]]:
    """Per config section, the values of the preset and then of the --config file (flags are
    applied later)."""
    bases: dict[str, dict[str, Any]] = {key: {} for key in classes}
    if args.preset:
        presets = spec.preset_table()
        if args.preset not in presets:
            raise RnnlabError(f"unknown preset {args.preset!r}; known: "
                              f"{', '.join(presets) or 'none'}")
        for key, cls in classes.items():
            names = {f for f in cls.__dataclass_fields__}
            bases[key].update({k: v for k, v in presets[args.preset].items() if k in names})
    if args.config:
        from rnnlab.training.run_dir import read_config_file

        saved = read_config_file(Path(args.config), classes, task=spec.name)
        for key, config in saved.sections.items():
            bases[key].update(to_dict(config))
    return bases


def run_dir_from_args(args: argparse.Namespace, task: str) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    if args.resume:
        raise RnnlabError("--resume needs the --run-dir of the run to continue")
    if distributed.is_distributed():
        raise RnnlabError("under torchrun, give --run-dir: every process (and every restart "
                          "of the group) must write the same run")
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_summary(summary: dict[str, Any], fmt: str) -> None:
    """The training summary, with the files the run wrote (`files`)."""
    from rnnlab.training.run_dir import run_files

    if "run_dir" in summary:
        summary = {**summary, "files": run_files(summary["run_dir"])}
    if fmt == "json":
        print(json.dumps(summary, indent=2))
        return
    summary = dict(summary)
    for note in summary.pop("notes", []):
        print(f"note: {note}")
    for key, value in summary.items():
        if isinstance(value, dict):  # final metrics, a split's scores: one line
            value = ", ".join(f"{k} {format_value(v)}" for k, v in value.items()) or "-"
        elif isinstance(value, list) and key == "files":
            value = ", ".join(value)
        print(f"{key}: {format_value(value)}")


def run_train(args: argparse.Namespace) -> int:
    """Preset, then --config file, then the flags; a resumed run keeps its saved configs
    (flags still override them); giving one of the task's own-file flags switches the
    default corpus off."""
    spec = get_task(args.train_task)
    classes = spec.section_classes()
    run_dir = run_dir_from_args(args, spec.name)
    # A group that torchrun restarted after a failure continues from the last checkpoint.
    args.resume = args.resume or (distributed.restarted() and holds_run(run_dir))
    bases = section_bases(args, spec, classes)
    if any(getattr(args, name, None) for name in spec.own_files):
        bases["config"]["corpus"] = None
    if args.resume:  # the run keeps its saved configs; flags change what they name
        saved = load_run(run_dir, task=spec.name).sections
        bases = {key: to_dict(saved[key]) if key in saved else bases[key] for key in classes}
    configs = [dataclass_from_args(cls, args, bases[key]) for key, cls in classes.items()]
    try:
        summary = resolve(spec.train)(*configs, run_dir, data_dir=args.data_dir,
                                      resume=args.resume, show_progress=not args.quiet)
    finally:
        distributed.cleanup()
    if distributed.is_main():  # data parallel: one summary, rank 0's
        print_summary(summary, args.format)
    return 0
