"""The run folder: what every task's `train_*` does around the Trainer (open the folder, new or
resumed, record how the run was made, train), and reading that record back.

A run folder holds `config.json` (the task's name, its config sections, versions and the
task's extra facts such as tokenizers or labels), the vocabulary file(s), `model.safetensors`
and `checkpoints/` (see `training.checkpoint`). `write_run_info` and `read_run_info` are the
only code that writes and reads `config.json`, so its round-trip lives in one place and is
strict: a key a config class does not know is an error that names the version that wrote it.
Plots are drawn by the task layer (`rnnlab.tasks.fit`), never here: training only logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from rnnlab import __version__
from rnnlab.config import to_dict
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.training import distributed
from rnnlab.training.checkpoint import (
    CHECKPOINTS,
    CONFIG_FILE,
    MODEL_FILE,
    holds_run,
    latest_checkpoint,
    load_weights,
    read_json,
    write_json,
)
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import acquire_run_lock, refuse_if_written, release_run_lock
from rnnlab.training.precision import check_precision
from rnnlab.training.trainer import Trainer, TrainTask

C = TypeVar("C")
# Config fields that name a user's own file (tasks' data files and pretrained vectors).
USER_FILE_FIELDS = ("train", "valid", "test", "embeddings", "src_train", "tgt_train",
                    "src_valid", "tgt_valid", "src_test", "tgt_test")
# config.json keys that are not sections and not the task's extra facts.
RECORD_KEYS = ("task", "rnnlab", "torch", "parameters")


@dataclass(frozen=True)
class RunInfo:
    """A run folder's config.json, read back: its task, one config object per section
    (`config`: the task's own; `train`: the TrainConfig, where the task has one) and the
    task's extra facts (tokenizers, labels, tag scheme, corpus name, data notes)."""

    path: Path
    task: str
    sections: Mapping[str, Any]
    extra: Mapping[str, Any]
    version: str  # the rnnlab version that wrote the run
    record: Mapping[str, Any]  # config.json as saved (plain JSON values)

    @property
    def config(self) -> Any:
        return self.sections["config"]

    @property
    def train(self) -> TrainConfig | None:
        return self.sections.get("train")

    def file(self, name: str) -> Path:
        """A file of the run folder, which must exist (vocab.json, tags.json, ...)."""
        path = self.path / name
        if not path.exists():
            raise RnnlabError(f"{self.path} lacks {name}: the run folder is incomplete")
        return path

    def load_model(self, model: torch.nn.Module, device: str | torch.device = "auto"
                   ) -> torch.nn.Module:
        """`model` on `device` with the run's best weights, in eval mode."""
        target = device if isinstance(device, torch.device) else resolve_device(device)
        model.to(target)
        load_weights(model, self.path / MODEL_FILE)
        return model.eval()


def read_run_info(run_dir: str | Path, sections: Mapping[str, type], *,
                  task: str | tuple[str, ...] | None = None) -> RunInfo:
    """Read `run_dir/config.json`, building each section with its class (`{"config":
    LMConfig, "train": TrainConfig}`); `task` names the task(s) the caller can read.

    A section key its class does not know means the run was written by another version of
    rnnlab (or edited): that is a one-line error naming the keys and the version, never a
    TypeError deep inside a constructor. Keys a class has but the file lacks take defaults.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RnnlabError(f"run directory {path} does not exist")
    if not (path / CONFIG_FILE).is_file():
        raise RnnlabError(f"{path} is not a run directory (no {CONFIG_FILE})")
    return read_config_file(path / CONFIG_FILE, sections, task=task)


def read_config_file(file: Path, sections: Mapping[str, type], *,
                     task: str | tuple[str, ...] | None = None) -> RunInfo:
    """`read_run_info` of a config.json given by its own path (`--config FILE`)."""
    saved = read_json(file)
    path = file.parent
    if not isinstance(saved, dict) or not isinstance(saved.get("task"), str):
        raise RnnlabError(f"{file} does not name a task: not the config.json of an rnnlab run")
    found = saved["task"]
    wanted = (task,) if isinstance(task, str) else task
    if wanted and found not in wanted:
        raise RnnlabError(f"{path} holds a {found!r} run, not a {' or '.join(map(repr, wanted))}"
                          " run")
    version = str(saved.get("rnnlab", "unknown"))
    built = {}
    for key, cls in sections.items():
        if key not in saved:
            if key == "train":
                continue  # cross-validation parents and n-gram runs have no training section
            raise RnnlabError(f"{file} has no {key!r} section")
        built[key] = _build(cls, saved[key], file, version)
    extra = {k: v for k, v in saved.items() if k not in sections and k not in RECORD_KEYS}
    return RunInfo(path, found, built, extra, version, saved)


def _build(cls: type[C], values: Any, file: Path, version: str) -> C:
    if not isinstance(values, dict):
        raise RnnlabError(f"{file}: the {cls.__name__} section is not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise RnnlabError(
            f"{file} was written by rnnlab {version} (this is {__version__}): its "
            f"{cls.__name__} has settings this version does not know ({', '.join(unknown)}); "
            "read it with that version, or retrain")
    try:
        return cls(**values)
    except (TypeError, ValueError, RnnlabError) as err:
        raise RnnlabError(f"{file}: bad {cls.__name__}: {err}") from err


def open_run(run_dir: Path, task: str, config: C, train_config: TrainConfig,
             resume: bool) -> tuple[C, torch.device]:
    """The config to train with (a resumed run's own saved one) and the device to train on.

    A new run refuses a directory that already holds one, so nothing is overwritten by mistake;
    a folder whose first start died before its first checkpoint is not a run yet and is reused.
    A resumed run refuses a change to its model or data. Launched by torchrun, this process
    joins the training group here (the device decides the backend: `distributed.init`); rank 0
    alone checks for other writers, whose lock it is about to take.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnlabError(f"--run-dir {run_dir} is a file, not a directory")
    main = distributed.is_main()
    if main:
        refuse_if_written(run_dir)  # another training in this folder: say so before loading
    if resume:
        if (run_dir / CHECKPOINTS).is_dir() and latest_checkpoint(run_dir) is None:
            raise RnnlabError(f"--resume: {run_dir} has no complete checkpoint (its first start "
                              "stopped before writing one): start it again without --resume")
        saved_config = read_run_info(run_dir, {"config": type(config)}, task=task).config
        refuse_changes(saved_config, absolute_files(config))
        config = saved_config
    elif main and holds_run(run_dir):
        raise RnnlabError(f"{run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    else:
        config = absolute_files(config)
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    device = distributed.init(resolve_device(train_config.device))
    check_precision(train_config.precision, device.type)
    return config, device


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


def write_run_info(run_dir: Path, task: str, config: Any, train_config: TrainConfig | None,
                   model: torch.nn.Module | None = None, *,
                   sections: Mapping[str, Any] | None = None, checkpoints: bool = True,
                   **extra: Any) -> None:
    """config.json: the task, its config sections (`config`, `train` and any in `sections`),
    versions, size, and the task's `extra` facts: everything needed to read the run back.

    The first write of a new run: it takes the writer lock (held until training ends: `fit`
    releases it, or the caller with `release_run_lock`; see `lock.py`) and checks again that no
    other writer made the folder a run meanwhile. `checkpoints=False` for a run made in one
    pass (an n-gram model, the parent folder of cross-validation): its config.json alone then
    marks the folder as a run."""
    run_dir = Path(run_dir)
    acquire_run_lock(run_dir)
    if holds_run(run_dir):
        release_run_lock(run_dir)
        raise RnnlabError(f"{run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --run-dir")
    if checkpoints:
        (run_dir / CHECKPOINTS).mkdir(exist_ok=True)  # marks a start in progress: see holds_run
    record: dict[str, Any] = {"task": task, "config": to_dict(config)}
    if train_config is not None:
        record["train"] = to_dict(train_config)
    record.update({key: to_dict(value) for key, value in (sections or {}).items()})
    record.update(extra)
    record.update({"rnnlab": __version__, "torch": torch.__version__})
    if model is not None:
        record["parameters"] = sum(p.numel() for p in model.parameters())
    write_json(run_dir / CONFIG_FILE, record)


def record_train_config(run_dir: Path, train_config: TrainConfig) -> None:
    """A resumed run that changed training settings (budget, schedule, lr) keeps them in its
    config.json, so a later `--resume` or `--config` starts from what last ran (the log's
    `start` record keeps what changed, and from what)."""
    record = read_json(run_dir / CONFIG_FILE)
    record["train"] = to_dict(train_config)
    write_json(run_dir / CONFIG_FILE, record)


def run_files(run_dir: str | Path) -> list[str]:
    """What a run folder holds, as paths relative to it: its files, and for checkpoints/ the
    newest checkpoint only (the folder keeps the last few)."""
    from rnnlab.training.checkpoint import latest_checkpoint

    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    found += sorted(f"{p.name}/" for p in root.iterdir() if p.is_dir() and p.name != "checkpoints"
                    and not p.name.startswith("."))
    latest = latest_checkpoint(root) if (root / "checkpoints").is_dir() else None
    if latest is not None:
        found.append(f"checkpoints/{latest.name}/ (latest)")
    return found


def fit(task: TrainTask, train_config: TrainConfig, run_dir: Path, *, resume: bool,
        show_progress: bool) -> dict[str, Any]:
    """Train with the shared Trainer; the summary it returns. A new run's writer lock (taken by
    `write_run_info`) is released here, however training ends."""
    try:
        trainer = Trainer(task, train_config, Path(run_dir), resume=resume,
                          show_progress=show_progress)
        if trainer.resume_changes:
            record_train_config(Path(run_dir), train_config)
        return trainer.fit()
    finally:
        if not resume:
            release_run_lock(Path(run_dir))
