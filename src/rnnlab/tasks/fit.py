"""Train a task with the shared Trainer, then draw its curves: the plot is the task layer's job,
so `training` never imports `plots` (plots read what training logged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.training import distributed
from rnnlab.training.config import TrainConfig
from rnnlab.training.run_dir import fit
from rnnlab.training.trainer import TrainTask

CURVES_FILE = "loss.png"


def fit_and_plot(task: TrainTask, train_config: TrainConfig, run_dir: Path, *, resume: bool,
                 show_progress: bool) -> dict[str, Any]:
    """Train, then draw the curves (loss.png) from the run's log (rank 0 alone, when data
    parallel: it alone writes the run folder)."""
    from rnnlab.plots import plot_training_curves

    summary = fit(task, train_config, run_dir, resume=resume, show_progress=show_progress)
    if distributed.is_main():
        plot_training_curves(Path(run_dir))
    return summary
