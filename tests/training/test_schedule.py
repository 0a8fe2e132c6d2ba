"""Learning-rate schedules: the factor each epoch / step gets, as the docstrings promise."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.training.config import TrainConfig
from rnnlab.training.optim import Schedule


def _optimizer(lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]


def test_zaremba_keeps_lr_until_decay_start_then_halves_each_epoch():
    config = TrainConfig(optimizer="sgd", lr=1.0, schedule="zaremba", lr_decay=0.5,
                         decay_start=5, epochs=13)
    schedule, optimizer = Schedule(config), _optimizer(1.0)
    seen = []
    for epoch in range(8):
        schedule.start_epoch(optimizer, epoch)
        seen.append(_lr(optimizer))
    assert seen == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]


def test_plateau_decays_only_when_dev_does_not_improve():
    config = TrainConfig(lr=0.4, schedule="plateau", lr_decay=0.25)
    schedule, optimizer = Schedule(config), _optimizer(0.4)
    schedule.start_epoch(optimizer, 0)
    schedule.observe(optimizer, 1.0, better=True)
    assert _lr(optimizer) == pytest.approx(0.4)
    schedule.observe(optimizer, 1.1, better=False)
    assert _lr(optimizer) == pytest.approx(0.1)
    schedule.start_epoch(optimizer, 1)  # a new epoch keeps the decayed rate
    assert _lr(optimizer) == pytest.approx(0.1)


def test_cosine_over_epochs_without_max_steps():
    config = TrainConfig(lr=2.0, schedule="cosine", epochs=4)
    schedule, optimizer = Schedule(config), _optimizer(2.0)
    seen = []
    for epoch in range(4):
        schedule.start_epoch(optimizer, epoch)
        schedule.start_step(optimizer, 100 * epoch)  # no step budget: steps change nothing
        seen.append(_lr(optimizer))
    assert seen == pytest.approx([2.0, 1 + math.cos(math.pi / 4), 1.0, 1 - math.cos(math.pi / 4)])


def test_cosine_over_max_steps_goes_step_by_step_to_zero_and_stays_there():
    config = TrainConfig(lr=1.0, schedule="cosine", epochs=100, max_steps=10)
    schedule, optimizer = Schedule(config), _optimizer(1.0)
    schedule.start_epoch(optimizer, 3)  # epochs do not drive it when steps are budgeted
    schedule.start_step(optimizer, 0)
    assert _lr(optimizer) == pytest.approx(1.0)
    schedule.start_step(optimizer, 5)
    assert _lr(optimizer) == pytest.approx(0.5)
    schedule.start_epoch(optimizer, 4)  # an epoch boundary keeps the step's rate
    assert _lr(optimizer) == pytest.approx(0.5)
    schedule.start_step(optimizer, 10)
    assert _lr(optimizer) == pytest.approx(0.0, abs=1e-12)
    restored = Schedule(config)
    restored.load_state_dict(schedule.state_dict())
    assert restored.factor == schedule.factor


def _nanogpt_lr(it: int, lr: float, min_lr: float, warmup: int, decay_iters: int) -> float:
    """nanoGPT train.py's get_lr, copied as the oracle, but for the warm-up ramp: rnnlab's is
    (it + 1) / warmup, shared by every schedule, nanoGPT's (it + 1) / (warmup + 1)."""
    if it < warmup:
        return lr * (it + 1) / warmup
    if it > decay_iters:
        return min_lr
    ratio = (it - warmup) / (decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def test_warmup_then_cosine_to_min_lr_is_nanogpts_schedule():
    config = TrainConfig(lr=1e-3, min_lr=1e-4, warmup=10, schedule="cosine", max_steps=50)
    schedule, optimizer = Schedule(config), _optimizer(1e-3)
    schedule.start_epoch(optimizer, 0)
    for step in range(60):
        schedule.start_step(optimizer, step)
        assert _lr(optimizer) == pytest.approx(_nanogpt_lr(step, 1e-3, 1e-4, 10, 50))


def test_warmup_with_a_constant_schedule_ends_at_the_full_rate():
    config = TrainConfig(lr=0.5, warmup=4)
    schedule, optimizer = Schedule(config), _optimizer(0.5)
    schedule.start_epoch(optimizer, 0)
    seen = []
    for step in range(7):
        schedule.start_step(optimizer, step)
        seen.append(_lr(optimizer))
    assert seen == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5, 0.5])


def test_weight_decay_spares_biases_and_norms_of_transformers():
    from rnnlab.training.optim import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    model.decay_matrices_only = True
    optimizer = build_optimizer(model, TrainConfig(weight_decay=0.1, beta2=0.99))
    decayed, spared = optimizer.param_groups
    assert [p.shape for p in decayed["params"]] == [(3, 3)] and decayed["weight_decay"] == 0.1
    assert len(spared["params"]) == 3 and spared["weight_decay"] == 0.0
    assert decayed["betas"] == (0.9, 0.99)


def test_inverse_sqrt_rises_linearly_then_decays_as_fairseq():
    """fairseq's inverse_sqrt: lr * min(step / warmup, sqrt(warmup / step)), 1-based steps."""
    config = TrainConfig(lr=1e-3, schedule="inverse-sqrt", warmup=4)
    schedule, optimizer = Schedule(config), _optimizer(1e-3)
    schedule.start_epoch(optimizer, 0)
    seen = []
    for step in range(9):
        schedule.start_step(optimizer, step)
        seen.append(_lr(optimizer))
    expected = [1e-3 * min(n / 4, math.sqrt(4 / n)) for n in range(1, 10)]
    assert seen == pytest.approx(expected)
    assert max(seen) == pytest.approx(1e-3)


def test_warmup_ramps_any_schedule():
    config = TrainConfig(lr=2.0, schedule="cosine", max_steps=10, warmup=2)
    schedule, optimizer = Schedule(config), _optimizer(2.0)
    schedule.start_step(optimizer, 0)
    assert _lr(optimizer) == pytest.approx(1.0)  # half of the warm-up, at cosine's factor 1
    schedule.start_step(optimizer, 5)  # the cosine runs over the steps after the warm-up
    assert _lr(optimizer) == pytest.approx(1.0 + math.cos(math.pi * 3 / 8))


def test_inverse_sqrt_needs_a_warmup():
    from rnnlab.errors import RnnlabError

    with pytest.raises(RnnlabError, match="--warmup"):
        Schedule(TrainConfig(schedule="inverse-sqrt"))
