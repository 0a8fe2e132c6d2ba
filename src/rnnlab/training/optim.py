"""Optimizers and learning-rate schedules, built from a TrainConfig."""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.training.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


class Schedule:
    """Per-epoch learning-rate factor; its whole state is two numbers, saved in checkpoints.

    - zaremba: lr * decay^max(0, epoch - decay_start + 1) for 1-based epochs (Zaremba et al.
      2014: lr 1 for four epochs, then halved every epoch);
    - plateau: lr * decay each time the dev metric fails to improve (pytorch/examples LM);
    - cosine: from lr to 0 over `max_steps`, step by step, when it is set (a budget of
      steps, as nanoGPT); else over the configured epochs, epoch by epoch;
    - inverse-sqrt: lr * sqrt(warmup / step) once the warm-up is over (Vaswani et al. 2017,
      sec. 5.3, with lr the peak rate, as fairseq's `inverse_sqrt`).
    With `warmup` N > 0 every schedule's rate is also scaled by min(1, step / N) (1-based
    steps), so the first steps of Adam do not move from a random start at the full rate.
    """

    def __init__(self, config: TrainConfig) -> None:
        if config.schedule == "inverse-sqrt" and config.warmup < 1:
            raise RnnlabError("--schedule inverse-sqrt needs --warmup N (steps, N >= 1)")
        self.config = config
        self.factor = 1.0

    def start_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        """`epoch` is 0-based."""
        c = self.config
        if c.schedule == "zaremba":
            self.factor = c.lr_decay ** max(0, epoch + 1 - c.decay_start + 1)
        elif c.schedule == "cosine" and not c.max_steps:
            self.factor = 0.5 * (1 + math.cos(math.pi * epoch / max(1, c.epochs)))
        self._apply(optimizer)

    def start_step(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """`step`: optimizer steps taken before this one (0-based)."""
        c = self.config
        if c.schedule == "cosine" and c.max_steps:
            self.factor = 0.5 * (1 + math.cos(math.pi * min(step, c.max_steps) / c.max_steps))
        elif c.schedule == "inverse-sqrt":
            self.factor = math.sqrt(c.warmup / max(step + 1, c.warmup))
        self._apply(optimizer, step)

    def _apply(self, optimizer: torch.optim.Optimizer, step: int | None = None) -> None:
        warm = self.config.warmup
        ramp = min(1.0, (step + 1) / warm) if warm and step is not None else 1.0
        for group in optimizer.param_groups:
            group["lr"] = self.config.lr * self.factor * ramp

    def observe(self, optimizer: torch.optim.Optimizer, value: float, better: bool) -> None:
        """Called with each dev metric; `better` says whether it improved on the best."""
        if self.config.schedule == "plateau" and not better:
            self.factor *= self.config.lr_decay
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr * self.factor

    def state_dict(self) -> dict[str, float]:
        return {"factor": self.factor}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.factor = float(state["factor"])
