"""Polyak averaging: an exponential moving average of a model's weights, which the Trainer
evaluates and keeps instead of the last step's weights when `--ema` is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnlab.errors import RnnlabError


class WeightAverage:
    """An exponential moving average of a model's parameters (Polyak averaging).

    The average of the last few hundred steps' weights often generalises a little better than
    the last step's (on SST-2 here it made no difference: classify_sst2_select_ema099.md). Its
    decay warms up as
    min(decay, (1 + t) / (10 + t)) after t updates, so the random initial weights fade fast.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise RnnlabError(f"--ema must be between 0 and 1 (e.g. 0.999), got {decay}")
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.averaged = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimizer step `step` (1-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        for average, param in zip(self.averaged, self.params, strict=True):
            average.lerp_(param.detach(), 1.0 - decay)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the model's weights and the averaged ones (twice restores the model)."""
        for average, param in zip(self.averaged, self.params, strict=True):
            kept = param.detach().clone()
            param.copy_(average)
            average.copy_(kept)

    def state_dict(self) -> list[Tensor]:
        return [a.detach().cpu() for a in self.averaged]

    def load_state_dict(self, state: list[Tensor]) -> None:
        if len(state) != len(self.averaged):
            raise RnnlabError(f"the checkpoint's weight average has {len(state)} tensors, "
                              f"the model {len(self.averaged)}")
        for average, saved in zip(self.averaged, state, strict=True):
            average.copy_(saved)


@contextmanager
def averaged_weights(average: WeightAverage | None) -> Iterator[None]:
    """Inside, the model holds the averaged weights (when there is an average)."""
    if average is None:
        yield
        return
    average.swap()
    try:
        yield
    finally:
        average.swap()
