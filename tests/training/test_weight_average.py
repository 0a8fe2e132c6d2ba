"""--ema: the Trainer evaluates and keeps an exponential moving average of the weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.training.checkpoint import MODEL_FILE
from rnnlab.training.config import TrainConfig
from rnnlab.training.trainer import Trainer

DIRECTION = torch.tensor([1.0, -2.0, 0.5])


class ConstantSlope:
    """loss = w · c: every SGD step moves w by -lr * c, so the average has a closed form."""

    metric, higher_is_better = "distance", False

    def __init__(self) -> None:
        self.model = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.model.weight.copy_(torch.tensor([[0.3, 0.1, -0.2]]))
        self.seen_weights: list[torch.Tensor] = []

    def batches(self, epoch: int) -> list[int]:
        return list(range(4))

    def start_epoch(self, epoch: int) -> None:
        pass

    def train_loss(self, batch: int) -> tuple[torch.Tensor, int]:
        return (self.model.weight[0] * DIRECTION).sum(), 1

    def evaluate(self) -> dict[str, float]:
        weight = self.model.weight.detach()[0].clone()
        self.seen_weights.append(weight)
        return {"distance": float(weight.norm())}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _expected_average(steps: int, decay: float, lr: float) -> torch.Tensor:
    start = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64)
    average = start.clone()
    for t in range(1, steps + 1):
        d = min(decay, (1 + t) / (10 + t))
        weights = start - t * lr * DIRECTION.double()
        average = d * average + (1 - d) * weights
    return average


def test_evaluation_and_best_weights_use_the_average_training_continues_on_raw(tmp_path):
    config = TrainConfig(optimizer="sgd", lr=0.1, clip=0.0, epochs=3, ema=0.9, seed=1)
    task = ConstantSlope()
    Trainer(task, config, tmp_path, show_progress=False).fit()
    steps = 12
    expected = _expected_average(steps, 0.9, 0.1).float()
    assert torch.allclose(task.seen_weights[-1], expected, atol=1e-6)
    raw = torch.tensor([0.3, 0.1, -0.2]) - steps * 0.1 * DIRECTION
    assert torch.allclose(task.model.weight.detach()[0], raw, atol=1e-6)  # swapped back
    best = load_file(str(tmp_path / MODEL_FILE))["weight"][0]
    assert torch.allclose(best, task.seen_weights[0], atol=1e-6)  # the best is the first eval
    assert not torch.allclose(best, raw)


def test_resumed_run_with_average_equals_uninterrupted_run(tmp_path):
    config = TrainConfig(optimizer="adamw", lr=0.05, clip=0.0, epochs=5, ema=0.8, seed=1)
    full = ConstantSlope()
    Trainer(full, dataclasses.replace(config, max_steps=14), tmp_path / "full",
            show_progress=False).fit()
    Trainer(ConstantSlope(), dataclasses.replace(config, max_steps=6), tmp_path / "split",
            show_progress=False).fit()
    resumed = ConstantSlope()
    Trainer(resumed, dataclasses.replace(config, max_steps=14), tmp_path / "split",
            resume=True, show_progress=False).fit()
    assert torch.equal(full.seen_weights[-1], resumed.seen_weights[-1])
    assert torch.equal(full.model.weight, resumed.model.weight)


def test_average_needs_a_decay_between_0_and_1_and_a_matching_checkpoint(tmp_path):
    with pytest.raises(RnnlabError, match="--ema must be at least 0.0 and less than 1.0"):
        Trainer(ConstantSlope(), TrainConfig(ema=1.5), tmp_path / "bad", show_progress=False)
    plain = TrainConfig(optimizer="sgd", lr=0.1, clip=0.0, epochs=1)
    Trainer(ConstantSlope(), plain, tmp_path / "plain", show_progress=False).fit()
    with pytest.raises(RnnlabError, match="without --ema"):
        Trainer(ConstantSlope(), dataclasses.replace(plain, ema=0.9, epochs=2),
                tmp_path / "plain", resume=True, show_progress=False)
