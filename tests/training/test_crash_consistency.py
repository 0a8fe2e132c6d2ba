"""The run folder's promises, one at a time: non-finite dev metrics stop the run, a failed first
start may start again, --resume refuses model changes and names the training changes it applies,
re-saving a step never loses the complete copy, leftovers of killed writers are cleaned."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rnnlab.errors import RnnlabError
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.train import LMTask, train_lm
from rnnlab.training.checkpoint import (
    CHECKPOINTS,
    checkpoint_step,
    holds_run,
    latest_checkpoint,
    save_checkpoint,
)
from rnnlab.training.config import TrainConfig
from rnnlab.training.lock import acquire_run_lock, release_run_lock

TEXT = "".join(f"line {i} says hello to the little world of rnnlab\n" for i in range(200))


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _configs(text, **train):
    config = LMConfig(corpus=None, train=str(text), level="char", hidden=8, embedding_size=4,
                      layers=1, batch_size=4, bptt=8, eval_batch_size=2)
    return config, TrainConfig(lr=0.01, epochs=100, eval_every=7, log_every=3, seed=5,
                               **{"max_steps": 20, **train})


def test_non_finite_dev_loss_stops_and_never_becomes_best(tmp_path, text, monkeypatch):
    original, calls = LMTask.evaluate, {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        metrics = original(self)
        return {**metrics, "loss": float("inf")} if calls["n"] == 2 else metrics

    monkeypatch.setattr(LMTask, "evaluate", poisoned)
    config, train = _configs(text)
    with pytest.raises(RnnlabError, match="dev loss became inf at step 14.*step-00000007"):
        train_lm(config, train, tmp_path / "run", show_progress=False)
    assert checkpoint_step(latest_checkpoint(tmp_path / "run")) == 7
    best = (tmp_path / "run" / "best.json").read_text()
    assert '"step": 7' in best and "inf" not in best.lower()


def test_failed_first_start_may_start_again(tmp_path, text):
    config, train = _configs(text)
    with pytest.raises(RnnlabError, match="too small"):
        train_lm(dataclasses.replace(config, batch_size=4000), train, tmp_path / "run",
                 show_progress=False)
    assert (tmp_path / "run" / "config.json").exists() and not holds_run(tmp_path / "run")
    with pytest.raises(RnnlabError, match="no complete checkpoint.*without --resume"):
        train_lm(config, train, tmp_path / "run", resume=True, show_progress=False)
    assert train_lm(config, train, tmp_path / "run", show_progress=False)["steps"] == 20


def test_resume_refuses_model_changes_and_names_training_changes(tmp_path, text):
    config, train = _configs(text)
    train_lm(config, train, tmp_path / "run", show_progress=False)
    with pytest.raises(RnnlabError, match="cannot change the model or data: --hidden 16"):
        train_lm(dataclasses.replace(config, hidden=16), train, tmp_path / "run", resume=True,
                 show_progress=False)
    with pytest.raises(RnnlabError, match="cannot change --seed 6"):
        train_lm(config, dataclasses.replace(train, seed=6, max_steps=30), tmp_path / "run",
                 resume=True, show_progress=False)
    summary = train_lm(config, dataclasses.replace(train, max_steps=30), tmp_path / "run",
                       resume=True, show_progress=False)
    assert summary["steps"] == 30 and summary["resumed_with"] == {"max_steps": [20, 30]}
    from rnnlab.tasks.registry import load_run

    assert load_run(tmp_path / "run").train.max_steps == 30  # config.json says what last ran


def test_resave_never_deletes_the_only_copy_and_a_bad_latest_falls_back(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 3, model, {"x": 1})
    first = latest_checkpoint(tmp_path)

    def failing_save(state, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rnnlab.training.checkpoint.torch.save", failing_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, 3, model, {"x": 2})
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == first and (first / "model.safetensors").exists()
    save_checkpoint(tmp_path, 3, model, {"x": 2})  # a re-save that succeeds replaces it
    assert sorted(p.name for p in (tmp_path / CHECKPOINTS).iterdir()) == ["LATEST", first.name]
    (tmp_path / CHECKPOINTS / "LATEST").write_text("step-00000099\n")
    assert latest_checkpoint(tmp_path) == first


def test_orphans_of_killed_writers_are_removed(tmp_path, text):
    config, train = _configs(text, max_steps=7)
    run = tmp_path / "run"
    train_lm(config, train, run, show_progress=False)
    (run / ".model.abc.tmp").write_bytes(b"half")
    (run / CHECKPOINTS / ".step-00000009.xyz").mkdir()
    train_lm(config, dataclasses.replace(train, max_steps=9), run, resume=True,
             show_progress=False)
    assert not (run / ".model.abc.tmp").exists()
    assert not (run / CHECKPOINTS / ".step-00000009.xyz").exists()


def test_lock_is_reentrant_in_a_process_and_refuses_another(tmp_path):
    import subprocess
    import sys

    acquire_run_lock(tmp_path)
    acquire_run_lock(tmp_path)
    code = ("import sys; from rnnlab.training.lock import acquire_run_lock\n"
            "from rnnlab.errors import RnnlabError\n"
            f"try: acquire_run_lock({str(tmp_path)!r})\n"
            "except RnnlabError as e: print(e); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3 and "PID" in done.stdout
    release_run_lock(tmp_path)
    release_run_lock(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
