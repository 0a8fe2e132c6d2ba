"""One Trainer for every task: it knows optimisation, budgets, checkpoints and logs, not tasks.

A task hands the Trainer an object with this shape (see `TrainTask`): the model, the batches of
an epoch (a deterministic function of the seed and the epoch, so a resumed run sees the same
batches), the loss of one batch (the task may carry state between batches, as stateful LMs do),
its dev evaluation, and the state it carries (saved in checkpoints for exact resumption).

Crash consistency: the Trainer holds the run's writer lock (`lock.py`) while it lives; stop
signals are acted on between steps only (`signals.py`), so the checkpoint they leave is of a
completed step and the resumed run equals the uninterrupted one bit for bit; a non-finite
training or dev loss stops the run and sets aside the checkpoints it spoiled, so the one named
(and resumed) is a checkpoint whose weights, training loss and dev metrics were finite.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from rnnlab.errors import RnnlabError
from rnnlab.nn.utils import clip_grad_norm
from rnnlab.training import distributed
from rnnlab.training.allocator import keep_freed_memory
from rnnlab.training.averaging import WeightAverage, averaged_weights
from rnnlab.training.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    read_json,
    remove_orphans,
    save_checkpoint,
    save_weights,
    set_aside_bad_checkpoints,
    write_json,
)
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import acquire_run_lock, release_run_lock
from rnnlab.training.log import EVENT_FILES, RunLog, progress_bar
from rnnlab.training.optim import Schedule, build_optimizer
from rnnlab.training.precision import Precision
from rnnlab.training.signals import StopRequests, TrainingInterrupted

# Settings a resumed run must keep: the optimizer's saved state and the batch order depend on
# them. Every other training setting (budget, schedule, lr, logging) may change on --resume.
FIXED_ON_RESUME = ("optimizer", "seed", "ema")
# Files a start that died before its first checkpoint may have left; a new start replaces them.
FAILED_START_LEFTOVERS = ("log.jsonl", "best.json", MODEL_FILE, "loss.png")


class TrainTask(Protocol):
    model: nn.Module
    metric: str  # the dev metric that picks the best checkpoint, e.g. "loss" or "accuracy"
    higher_is_better: bool

    def batches(self, epoch: int) -> Sequence[Any]: ...
    def start_epoch(self, epoch: int) -> None: ...
    def train_loss(self, batch: Any) -> tuple[Tensor, int]: ...  # (mean loss, items counted)
    def evaluate(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """Everything besides weights and optimizer that a resumed run needs to continue exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    evals_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    def __init__(self, task: TrainTask, config: TrainConfig, run_dir: Path,
                 resume: bool = False, show_progress: bool = True) -> None:
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self.model = task.model
        self.optimizer = build_optimizer(self.model, config)
        self.schedule = Schedule(config)
        self.progress = Progress()
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        # Data parallel (torchrun): rank 0 alone writes the run folder (distributed.py).
        self.world = distributed.world()
        self.log = (RunLog(self.run_dir, tensorboard=config.tensorboard) if self.world.main
                    else distributed.SilentLog())
        self.precision = Precision(config.precision, next(self.model.parameters()).device.type)
        self.show_progress = show_progress and self.world.main
        self.resume_changes: dict[str, list[Any]] = {}
        self._saved_step: int | None = None
        if self.world.main:
            acquire_run_lock(self.run_dir)
        try:
            if self.world.main:
                remove_orphans(self.run_dir)
            if resume:
                self._resume()
            else:
                self._fresh_start()
        except BaseException:
            release_run_lock(self.run_dir)
            raise
        device = next(self.model.parameters()).device
        self.parallel = distributed.data_parallel(task, device)  # None for one process

    # -- checkpoints ---------------------------------------------------------------------------

    def _rank_state(self) -> dict[str, Any]:
        """What differs between data-parallel processes: RNG and the task's carried state."""
        return {
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "task": self.task.state_dict(),
        }

    def _state(self, ranks: list[dict[str, Any]]) -> dict[str, Any]:
        """Rank 0's own state at the top level (as a single process saves it); the other
        ranks' under "ranks", so a resumed group continues exactly."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "progress": asdict(self.progress),
            **ranks[0],
            "world_size": len(ranks),
            "ranks": ranks[1:],
            "ema": self.average.state_dict() if self.average else [],
            "scaler": self.precision.state_dict(),
        }

    def save(self) -> Path:
        """A checkpoint of the current (completed) step; written once per step. With several
        processes every one calls it at the same step, and rank 0 writes."""
        ranks = distributed.gather_to_main(self._rank_state())
        path = None
        if ranks is not None:  # rank 0 (or a process alone)
            path = self._write_checkpoint(ranks)
        return Path(distributed.broadcast(str(path)))

    def _write_checkpoint(self, ranks: list[dict[str, Any]]) -> Path:
        if self._saved_step == self.progress.step:
            latest = latest_checkpoint(self.run_dir)
            if latest is not None and checkpoint_step(latest) == self.progress.step:
                return latest
        path = save_checkpoint(self.run_dir, self.progress.step, self.model, self._state(ranks))
        self._saved_step = self.progress.step
        return path

    def _fresh_start(self) -> None:
        if latest_checkpoint(self.run_dir) is not None:
            raise RnnlabError(f"{self.run_dir} already holds a run: pass --resume to continue "
                              "it, or choose another --run-dir")
        if not self.world.main:
            # Every process drew the same initial weights from --seed; from here each draws its
            # own dropout masks (seed + rank, as nanoGPT and HF's seed offsets do), or the
            # processes would drop the same units of different examples. A resume restores
            # each process's stream from the checkpoint instead.
            torch.manual_seed(self.config.seed + self.world.rank)
            return
        for name in FAILED_START_LEFTOVERS:
            (self.run_dir / name).unlink(missing_ok=True)
        for path in self.run_dir.glob(EVENT_FILES):
            path.unlink()

    def _resume(self) -> None:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            raise RnnlabError(f"--resume: {self.run_dir} has no complete checkpoint (its first "
                              "start stopped before writing one): start it again without "
                              "--resume")
        self._check_resumed_config()
        state = load_checkpoint(path, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.progress = Progress(**state["progress"])
        own = self._own_state(state, path)
        torch.set_rng_state(own["rng_cpu"])
        if own["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(own["rng_cuda"])
        self.task.load_state_dict(own["task"])
        self.precision.load_state_dict(state.get("scaler", {}))
        if self.average:
            if not state.get("ema"):
                raise RnnlabError(f"--ema: the checkpoint {path} was trained without --ema; "
                                  "resume it without --ema")
            self.average.load_state_dict(state["ema"])
        self.log.truncate_after(self.progress.step)
        self._saved_step = self.progress.step

    def _own_state(self, state: dict[str, Any], path: Path) -> dict[str, Any]:
        """This process's RNG and task state from a checkpoint written by as many processes.

        A different number is refused rather than approximated: each process's carried LM
        states and RNG streams belong to its own share of the batch."""
        saved = int(state.get("world_size", 1))
        if saved != self.world.size:
            raise RnnlabError(
                f"--resume: the checkpoint {path} was written by {saved} training "
                f"process{'es' if saved > 1 else ''} and this run has {self.world.size}; "
                f"resume it with {saved} (torchrun --nproc-per-node/--nnodes), since each "
                "process's RNG and data position are saved for its own share of the batch")
        return state if self.world.rank == 0 else state["ranks"][self.world.rank - 1]

    def _check_resumed_config(self) -> None:
        """Refuse a change the saved state cannot follow; note the changes that apply."""
        config_path = self.run_dir / CONFIG_FILE
        if not config_path.exists():
            return
        saved = read_json(config_path).get("train", {})
        now = asdict(self.config)
        changed = {k: [saved[k], now[k]] for k in now if k in saved and saved[k] != now[k]}
        fixed = [k for k in changed if k in FIXED_ON_RESUME]
        if fixed:
            told = ", ".join(f"--{k.replace('_', '-')} {changed[k][1]} (the run has "
                             f"{changed[k][0]})" for k in fixed)
            raise RnnlabError(f"--resume cannot change {told}: the saved optimizer state and "
                              "batch order depend on it")
        self.resume_changes = changed

    # -- the loop ------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        c, p = self.config, self.progress
        keep_freed_memory()  # no page faults for the tensors each step re-allocates
        started = self._started = time.monotonic()
        self._first_step = p.step
        stop_reason = "epochs"
        bar = progress_bar(c.max_steps or None, initial=p.step, enabled=self.show_progress)
        self.log.write("start", step=p.step, epoch=p.epoch, resumed=p.step > 0,
                       **({"changes": self.resume_changes} if self.resume_changes else {}))
        try:
            with StopRequests() as stop:
                while p.epoch < c.epochs:
                    self._stop_if_asked(stop)
                    batches = self.task.batches(p.epoch)
                    bar.total = self._expected_steps(len(batches), started)
                    bar.refresh()  # the end is known from the start, not from the first log
                    if p.batch_in_epoch == 0:
                        self.task.start_epoch(p.epoch)
                    self.schedule.start_epoch(self.optimizer, p.epoch)
                    window_loss, window_items, window_start = 0.0, 0, time.monotonic()
                    for index in range(p.batch_in_epoch, len(batches)):
                        if c.max_steps and p.step >= c.max_steps:  # a resumed finished run
                            self.save()
                            return self._finish("max steps", started)
                        self._stop_if_asked(stop)  # only here, between two whole steps
                        loss, items = self._train_step(batches[index])
                        p.batch_in_epoch = index + 1
                        self._advance(bar)
                        window_loss += loss * items
                        window_items += items
                        if p.step % c.log_every == 0 or p.batch_in_epoch == len(batches):
                            elapsed = max(time.monotonic() - window_start, 1e-9)
                            mean = window_loss / max(window_items, 1)
                            self._log_train(bar, mean, window_items / elapsed)
                            window_loss, window_items, window_start = 0.0, 0, time.monotonic()
                        if c.eval_every and p.step % c.eval_every == 0:
                            if self._evaluate_and_save():
                                stop_reason = "early stopping"
                                return self._finish(stop_reason, started)
                            window_start = time.monotonic()  # throughput counts training only
                        budget_reason = self._budget_spent(started)
                        if budget_reason:
                            self.save()  # no second copy when this step was just evaluated
                            return self._finish(budget_reason, started)
                    p.epoch += 1
                    p.batch_in_epoch = 0
                    if self._evaluate_and_save():
                        stop_reason = "early stopping"
                        break
                return self._finish(stop_reason, started)
        finally:
            bar.close()
            self.log.close()
            release_run_lock(self.run_dir)

    def _stop_if_asked(self, stop: StopRequests) -> None:
        """Between steps: on a stop signal, save the last completed step and stop (a signal
        to any one data-parallel process stops them all at the same step)."""
        signum = distributed.any_signal(stop.signum)
        if signum is None:
            return
        path = self.save()
        name = signal.Signals(signum).name
        self.log.write("interrupted", step=self.progress.step, signal=name, checkpoint=str(path))
        raise TrainingInterrupted(signum, f"{name} after step {self.progress.step}: "
                                  f"checkpoint saved in {path}; continue with --resume")

    def _train_step(self, batch: Any) -> tuple[float, int]:
        self.model.train()
        self.schedule.start_step(self.optimizer, self.progress.step)
        with self.precision.autocast():
            if self.parallel is None:
                loss, items = self.task.train_loss(batch)
            else:  # DDP's forward runs train_loss, so the backward all-reduces the gradients
                loss, items = self.parallel(batch)
                items = 0 if isinstance(batch, distributed.Borrowed) else items
        loss, value, items = distributed.weigh(loss, items)  # global mean over all processes
        if not math.isfinite(value):
            # This loss came from the weights of the step before: its checkpoint is spoilt too.
            raise self._non_finite("training loss", value, self.progress.step + 1,
                                   first_bad_step=self.progress.step)
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        self.precision.unscale(self.optimizer)
        self.last_grad_norm = clip_grad_norm(self.model.parameters(), self.config.clip)
        self.precision.step(self.optimizer)
        self.progress.step += 1
        if self.average:
            self.average.update(self.progress.step)
        return value, items

    def _non_finite(self, what: str, value: float, step: int, first_bad_step: int) -> RnnlabError:
        """Set aside the checkpoints from `first_bad_step` on and name the last good one."""
        good = distributed.from_main(  # every process stops here: rank 0 alone renames
            lambda: set_aside_bad_checkpoints(self.run_dir, first_bad_step))
        self.log.write("non_finite", step=step, what=what, value=str(value),
                       good_checkpoint=str(good) if good else None)
        kept = (f"the last good checkpoint is {good} (--resume continues from it)" if good
                else "no good checkpoint was written yet")
        return RnnlabError(f"{what} became {value} at step {step}; {kept}. "
                           "Try a lower --lr or a smaller --clip.")

    def _log_train(self, bar: Any, loss: float, items_per_second: float) -> None:
        p = self.progress
        lr = self.optimizer.param_groups[0]["lr"]
        cpu = os.times()  # the process's CPU seconds so far: speed on a shared machine
        self.log.write("train", step=p.step, epoch=p.epoch + 1, loss=loss, lr=lr,
                       grad_norm=self.last_grad_norm, items_per_second=items_per_second,
                       cpu_user=cpu.user, cpu_system=cpu.system)
        bar.set_postfix(epoch=p.epoch + 1, loss=f"{loss:.3f}", ppl=f"{math.exp(min(loss, 50)):.1f}",
                        tok_s=f"{items_per_second:.0f}", refresh=False)

    def _advance(self, bar: Any) -> None:
        """Move the bar to this step, every step (not only at log lines, which may be minutes
        apart), with the end re-estimated: its percentage and ETA stay current."""
        bar.total = self._expected_steps(None, self._started)
        bar.update(self.progress.step - bar.n)

    def _expected_steps(self, epoch_batches: int | None, started: float) -> int | None:
        """The step the run will stop at, for the progress bar's percentage and ETA: the
        smallest of --max-steps, the steps of the remaining epochs and, with --minutes, the
        steps the measured rate reaches by the deadline (None while nothing bounds it)."""
        c, p = self.config, self.progress
        if epoch_batches is not None:
            self._epoch_batches = epoch_batches
        bounds = [c.max_steps] if c.max_steps else []
        per_epoch = getattr(self, "_epoch_batches", None)
        if per_epoch:
            bounds.append(p.step - p.batch_in_epoch + per_epoch * (c.epochs - p.epoch))
        elapsed = time.monotonic() - started
        done = p.step - self._first_step
        if c.minutes and done > 0 and elapsed > 0:
            left = max(c.minutes * 60 - elapsed, 0.0)
            bounds.append(p.step + int(done / elapsed * left))
        return max(min(bounds), p.step) if bounds else None

    def _evaluate(self) -> tuple[dict[str, float], bool]:
        """Dev metrics, and whether they beat the best so far (then the weights are kept)."""
        self.model.eval()
        with torch.no_grad(), averaged_weights(self.average):
            metrics = distributed.from_main(self.task.evaluate)  # rank 0's, given to all
            for name, number in metrics.items():
                if isinstance(number, float) and not math.isfinite(number):
                    raise self._non_finite(f"dev {name}", number, self.progress.step,
                                           first_bad_step=self.progress.step)
            value, best = metrics[self.task.metric], self.progress.best
            sign = 1 if self.task.higher_is_better else -1
            better = best is None or sign * (value - best) > 0
            if better and self.world.main:  # with --ema: the averaged weights are kept
                save_weights(self.model, self.run_dir / MODEL_FILE)
                write_json(self.run_dir / "best.json",
                           {"step": self.progress.step, "epoch": self.progress.epoch, **metrics})
        self.log.write("eval", step=self.progress.step, epoch=self.progress.epoch, best=better,
                       **metrics)
        return metrics, better

    def _evaluate_and_save(self) -> bool:
        """Evaluate on dev, keep the best weights, write a checkpoint; True means stop early."""
        p = self.progress
        metrics, better = self._evaluate()
        if better:
            p.best = metrics[self.task.metric]
            p.evals_without_improvement = 0
        else:
            p.evals_without_improvement += 1
        self.schedule.observe(self.optimizer, metrics[self.task.metric], better)
        p.history.append({"step": p.step, **metrics})
        self.save()
        return bool(self.config.patience) and p.evals_without_improvement >= self.config.patience

    def _budget_spent(self, started: float) -> str:
        c = self.config
        if c.max_steps and self.progress.step >= c.max_steps:
            return "max steps"
        if c.minutes and time.monotonic() - started >= c.minutes * 60:
            return "time budget"
        return ""

    def _finish(self, reason: str, started: float) -> dict[str, Any]:
        p = self.progress
        final: dict[str, float] = {}
        evaluated_now = bool(p.history) and p.history[-1]["step"] == p.step
        if evaluated_now:  # the evaluation of this very step is the final one: report it
            final = {k: v for k, v in p.history[-1].items() if k != "step"}
        else:
            # The checkpoint is already written, so this report changes nothing a resumed run
            # sees: it only keeps the final weights if they are the best so far.
            final, better = self._evaluate()
            if better:
                p.best = final[self.task.metric]
        summary = {"stop_reason": reason, "steps": p.step, "epochs_completed": p.epoch,
                   "best": p.best, "metric": self.task.metric, "final": final,
                   "seconds": round(time.monotonic() - started, 1)}
        if self.resume_changes:  # what --resume applied: {setting: [saved, now]}
            summary["resumed_with"] = self.resume_changes
        self.log.write("end", step=p.step, **summary)
        return summary

