"""Optimizers and learning-rate schedules, built from a TrainConfig."""

from __future__ import annotations

import math

import torch
from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.training.config import TrainConfig

# torch's fused AdamW: one pass over each parameter instead of one per operation (sqrt, div,
# addcdiv, lerp ...). Measured at one thread here: 5.2x the default's speed on a 400k x 100
# embedding table, and the CoNLL tagger's step spent 55 of its 87 ms in the default's AdamW
# (benchmarks/results/lengths_end_to_end.md). Same update, rounded differently.
FUSED_ADAMW = True


def _fused_adamw(params: list[nn.Parameter]) -> bool | None:
    """True where torch has the fused kernel for every parameter (CPU, CUDA; floating point),
    else None (torch's default implementation)."""
    ok = FUSED_ADAMW and params and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return True if ok else None


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters.

    A model with `decay_matrices_only = True` (the Transformers) has weight decay applied to its
    matrices alone, never to biases or LayerNorm gains, as GPT-2 / nanoGPT do (a LayerNorm gain
    pulled towards 0 shrinks the whole residual stream).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups: list = params
    if config.weight_decay and getattr(model, "decay_matrices_only", False):
        groups = [{"params": [p for p in params if p.dim() >= 2]},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.beta2),
                             weight_decay=config.weight_decay, fused=_fused_adamw(params))


class Schedule:
    """Per-epoch learning-rate factor; its whole state is two numbers, saved in checkpoints.

    - zaremba: lr * decay^max(0, epoch - decay_start + 1) for 1-based epochs (Zaremba et al.
      2014: lr 1 for four epochs, then halved every epoch);
    - plateau: lr * decay each time the dev metric fails to improve (pytorch/examples LM);
    - cosine: from lr to `min_lr` over `max_steps`, step by step, when it is set (a budget of
      steps, as nanoGPT: with a warm-up W the cosine runs over the steps W .. max_steps); else
      over the configured epochs, epoch by epoch;
    - inverse-sqrt: lr * sqrt(warmup / step) once the warm-up is over (Vaswani et al. 2017,
      sec. 5.3, with lr the peak rate, as fairseq's `inverse_sqrt`).
    With `warmup` N > 0 every schedule's rate is also scaled by min(1, step / N) (1-based
    steps), so the first steps of Adam do not move from a random start at the full rate
    (nanoGPT's ramp is (step + 1) / (N + 1) with 0-based steps: 1% apart at N = 100).
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
            self.factor = self._cosine(epoch / max(1, c.epochs))
        self._apply(optimizer)

    def _cosine(self, progress: float) -> float:
        """From 1 at progress 0 to min_lr / lr at progress 1, along half a cosine."""
        floor = self.config.min_lr / self.config.lr if self.config.lr else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def start_step(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """`step`: optimizer steps taken before this one (0-based)."""
        c = self.config
        if c.schedule == "cosine" and c.max_steps:
            span = max(1, c.max_steps - c.warmup)
            self.factor = self._cosine(min(max(step - c.warmup, 0), span) / span)
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
