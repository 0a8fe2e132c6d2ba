"""What every task's `train_*` does around the Trainer: open the run directory (new or resumed),
record how the run was made, train, and plot. Tasks keep only what is theirs: data and model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import torch

from rnnlab import __version__
from rnnlab.config import from_dict, to_dict
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.training.checkpoint import (
    CHECKPOINTS,
    CONFIG_FILE,
    holds_run,
    latest_checkpoint,
    read_json,
    write_json,
)
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import acquire_run_lock, refuse_if_written, release_run_lock
from rnnlab.training.trainer import Trainer, TrainTask

C = TypeVar("C")
# Config fields that name a user's own file (tasks' data files and pretrained vectors).
USER_FILE_FIELDS = ("train", "valid", "test", "embeddings", "src_train", "tgt_train",
                    "src_valid", "tgt_valid", "src_test", "tgt_test")


def open_run(run_dir: Path, task: str, config: C, train_config: TrainConfig,
             resume: bool) -> tuple[C, torch.device]:
    """The config to train with (a resumed run's own saved one) and the device to train on.

    A new run refuses a directory that already holds one, so nothing is overwritten by mistake;
    a folder whose first start died before its first checkpoint is not a run yet and is reused.
    A resumed run refuses a change to its model or data.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnlabError(f"--run-dir {run_dir} is a file, not a directory")
    refuse_if_written(run_dir)  # another training in this folder: say so before loading data
    if resume:
        if (run_dir / CHECKPOINTS).is_dir() and latest_checkpoint(run_dir) is None:
            raise RnnlabError(f"--resume: {run_dir} has no complete checkpoint (its first start "
                              "stopped before writing one): start it again without --resume")
        saved = read_json(run_dir / CONFIG_FILE)
        if saved.get("task") != task:
            raise RnnlabError(f"{run_dir} holds a {saved.get('task')!r} run, not a {task!r} run")
        saved_config = from_dict(type(config), saved["config"])
        refuse_changes(saved_config, absolute_files(config))
        config = saved_config
    elif holds_run(run_dir):
        raise RnnlabError(f"{run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    else:
        config = absolute_files(config)
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    return config, resolve_device(train_config.device)


def refuse_changes(saved: C, given: C) -> None:
    """--resume continues the saved model on the saved data: a changed field is a mistake."""
    changed = [f.name for f in dataclasses.fields(saved)  # type: ignore[arg-type]
               if getattr(saved, f.name) != getattr(given, f.name)]
    if changed:
        told = ", ".join(f"--{name.replace('_', '-')} {getattr(given, name)} (the run has "
                         f"{getattr(saved, name)})" for name in changed[:4])
        raise RnnlabError(f"--resume cannot change the model or data: {told}; only training "
                          "settings (budget, schedule, lr, logging) may change")


def absolute_files(config: C) -> C:
    """The config with the user's own files as absolute paths, so that `eval`, `--resume` and
    ensembles find them again from any working directory."""
    changes = {name: str(Path(value).resolve()) for name in USER_FILE_FIELDS
               if isinstance(value := getattr(config, name, None), str)}
    return dataclasses.replace(config, **changes) if changes else config


def write_run_info(run_dir: Path, task: str, config: Any, train_config: TrainConfig,
                   model: torch.nn.Module, **extra: Any) -> None:
    """config.json: the task, both configs, versions, size, and the task's `extra` (tokenizers,
    corpus name, data notes): everything needed to read the run back.

    The first write of a new run: it takes the writer lock (held until training ends, see
    `lock.py`) and checks again that no other writer made the folder a run meanwhile."""
    run_dir = Path(run_dir)
    acquire_run_lock(run_dir)
    if holds_run(run_dir):
        raise RnnlabError(f"{run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    (run_dir / CHECKPOINTS).mkdir(exist_ok=True)  # marks a start in progress: see holds_run
    write_json(run_dir / CONFIG_FILE, {
        "task": task, "config": to_dict(config), "train": to_dict(train_config), **extra,
        "rnnlab": __version__, "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
    })


def fit_and_plot(task: TrainTask, train_config: TrainConfig, run_dir: Path, *, resume: bool,
                 show_progress: bool) -> dict[str, Any]:
    """Train with the shared Trainer, then draw the curves (loss.png) from the run's log."""
    from rnnlab.plots import plot_training_curves

    try:
        trainer = Trainer(task, train_config, Path(run_dir), resume=resume,
                          show_progress=show_progress)
        summary = trainer.fit()
    finally:
        if not resume:
            release_run_lock(Path(run_dir))  # the hold write_run_info took
    plot_training_curves(Path(run_dir))
    return summary
