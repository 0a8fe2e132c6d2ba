"""The progress bar knows where the run ends (so tqdm shows a percentage and an ETA) from the
first step on, for --max-steps, --epochs and --minutes, and moves every step, not only at the
log lines (which may be minutes apart)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.training import trainer as trainer_module
from rnnlab.training.config import TrainConfig
from rnnlab.training.trainer import Trainer


class ToyTask:
    """The smallest TrainTask: a linear model over 6 fixed batches an epoch."""

    metric, higher_is_better = "loss", False

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(3, 1)
        self.data = [torch.randn(4, 3) for _ in range(6)]

    def batches(self, epoch):
        return self.data

    def start_epoch(self, epoch):
        pass

    def train_loss(self, batch):
        return self.model(batch).pow(2).mean(), len(batch)

    def evaluate(self):
        with torch.no_grad():
            return {"loss": float(sum(self.model(b).pow(2).mean() for b in self.data))}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class RecordingBar:
    """Stands in for tqdm: remembers (position, total) at every refresh and update."""

    def __init__(self, total, initial=0, enabled=True):
        self.total, self.n, self.seen = total, initial, []

    def update(self, count):
        self.n += count
        self.seen.append((self.n, self.total))

    def refresh(self):
        self.seen.append((self.n, self.total))

    def set_postfix(self, **values):
        pass

    def close(self):
        pass


@pytest.mark.parametrize(
    ("settings", "end"),
    [(dict(max_steps=5, epochs=10), 5),  # --max-steps
     (dict(epochs=2), 12),  # --epochs: 6 batches each
     (dict(epochs=2, max_steps=9), 9)],  # the nearer end
)
def test_the_bar_knows_the_end_from_the_start(tmp_path, monkeypatch, settings, end):
    bars = []
    monkeypatch.setattr(trainer_module, "progress_bar",
                        lambda *a, **k: bars.append(RecordingBar(*a, **k)) or bars[-1])
    Trainer(ToyTask(), TrainConfig(log_every=1000, **settings), tmp_path).fit()
    seen = bars[0].seen
    assert seen[0] == (0, end)  # before the first step
    positions = list(dict.fromkeys(n for n, _ in seen))  # a refresh repeats its position
    assert positions == list(range(end + 1))  # every step, not every log line
    assert all(total == end for _, total in seen)


def test_a_time_budget_gives_an_end_after_the_first_step(tmp_path, monkeypatch):
    bars = []
    monkeypatch.setattr(trainer_module, "progress_bar",
                        lambda *a, **k: bars.append(RecordingBar(*a, **k)) or bars[-1])
    Trainer(ToyTask(), TrainConfig(log_every=1000, epochs=1000, minutes=0.01,
                                   eval_every=0), tmp_path).fit()
    seen = bars[0].seen
    assert seen[0] == (0, 6000)  # the epochs bound until a rate is measured
    after = [total for n, total in seen if n]
    assert after and all(total is not None and total < 6000 for total in after)
