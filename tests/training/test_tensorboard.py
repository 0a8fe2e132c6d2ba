"""`--tensorboard`: the event files hold exactly the numbers of log.jsonl (read back with
TensorBoard's own EventAccumulator), and a resumed run's events replace what it redoes."""

from __future__ import annotations

import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from rnnlab.cli.main import main
from rnnlab.errors import RnnlabError
from rnnlab.training.log import RunLog, read_log

TEXT = "\n".join(f"line {i} says hello to the little world of rnnlab" for i in range(300)) + "\n"


def train(tmp_path, run, steps, *extra):
    corpus = tmp_path / "train.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "8",
                 "--layers", "1", "--batch-size", "4", "--bptt", "8", "--threads", "1",
                 "--max-steps", str(steps), "--log-every", "1", "--eval-every", "2",
                 "--tensorboard", "--run-dir", str(run), "--quiet", *extra]) == 0


def scalars(run) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def from_log(run) -> dict[str, list[tuple[int, float]]]:
    """What log.jsonl says TensorBoard should show: every number of each train and eval
    record, under train/ and dev/."""
    expected: dict[str, list[tuple[int, float]]] = {}
    for record in read_log(run):
        prefix = {"train": "train", "eval": "dev"}.get(record["kind"])
        for name, value in record.items():
            if prefix and name not in ("step", "epoch", "time", "best", "kind"):
                expected.setdefault(f"{prefix}/{name}", []).append((record["step"], value))
    return expected


def assert_same(events, expected):
    assert events.keys() == expected.keys()
    for tag, points in expected.items():
        assert [s for s, _ in events[tag]] == [s for s, _ in points], tag
        for (_, got), (_, want) in zip(events[tag], points, strict=True):
            assert got == pytest.approx(want, rel=1e-6), tag  # stored as float32


def test_event_files_hold_the_log_records(tmp_path):
    run = tmp_path / "run"
    train(tmp_path, run, 4)
    expected = from_log(run)
    assert {"train/loss", "train/lr", "train/grad_norm", "train/items_per_second",
            "dev/loss", "dev/ppl"} <= expected.keys()
    assert_same(scalars(run), expected)


def test_resume_replaces_the_steps_it_redoes(tmp_path):
    run = tmp_path / "run"
    train(tmp_path, run, 4)
    # a killed run that logged steps 5 and 6 after its last checkpoint (step 4)
    writer = SummaryWriter(str(run))
    for step in (5, 6):
        writer.add_scalar("train/loss", 999.0, global_step=step)
    writer.close()
    train(tmp_path, run, 6, "--resume")
    events = scalars(run)
    assert [s for s, _ in events["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert_same(events, from_log(run))


def test_a_new_start_clears_event_files_of_a_failed_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    writer = SummaryWriter(str(run))
    writer.add_scalar("train/loss", 999.0, global_step=1)
    writer.close()
    train(tmp_path, run, 2)
    assert_same(scalars(run), from_log(run))


def test_without_the_package_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(RnnlabError, match="pip install tensorboard"):
        RunLog(tmp_path, tensorboard=True)
