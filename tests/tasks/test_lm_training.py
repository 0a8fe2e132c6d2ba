"""Language-model training end to end on a small generated text: resume, budgets, bad input."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.errors import RnnlabError
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.train import LMTask, train_lm
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.config import TrainConfig


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(400)]
    path = tmp_path_factory.mktemp("corpus") / "tiny.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _configs(text_file, **train_overrides):
    config = LMConfig(corpus=None, train=str(text_file), level="char", cell="lstm-peephole",
                      hidden=16, embedding_size=8, layers=2, dropout=0.3, dropout_output=0.2,
                      batch_size=4, bptt=12, variable_bptt=True, eval_batch_size=2)
    train = TrainConfig(optimizer="adamw", lr=3e-3, epochs=3, eval_every=7, log_every=5,
                        seed=11, **train_overrides)
    return config, train


def test_resumed_run_equals_uninterrupted_run(tmp_path, text_file):
    config, train = _configs(text_file)
    full = dataclasses.replace(train, max_steps=40)
    half = dataclasses.replace(train, max_steps=20)
    train_lm(config, full, tmp_path / "full", show_progress=False)
    train_lm(config, half, tmp_path / "split", show_progress=False)
    summary = train_lm(config, full, tmp_path / "split", resume=True, show_progress=False)
    assert summary["steps"] == 40
    a = load_file(str(latest_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_run_directory_contents_and_refusal_to_overwrite(tmp_path, text_file):
    config, train = _configs(text_file, max_steps=3)
    train_lm(config, train, tmp_path / "run", show_progress=False)
    for name in ("config.json", "vocab.json", "model.safetensors", "log.jsonl", "loss.png"):
        assert (tmp_path / "run" / name).exists(), name
    with pytest.raises(RnnlabError, match="--resume"):
        train_lm(config, train, tmp_path / "run", show_progress=False)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, text_file, monkeypatch):
    config, train = _configs(text_file, max_steps=30)
    original = LMTask.train_loss
    calls = {"n": 0}

    def poisoned(self, batch):
        loss, items = original(self, batch)
        calls["n"] += 1
        return (loss * float("nan"), items) if calls["n"] > 9 else (loss, items)

    monkeypatch.setattr(LMTask, "train_loss", poisoned)
    with pytest.raises(RnnlabError, match="nan at step 10.*checkpoint"):
        train_lm(config, train, tmp_path / "run", show_progress=False)
    kept = latest_checkpoint(tmp_path / "run")
    assert kept is not None and kept.name == "step-00000007"


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, text_file):
    config, train = _configs(text_file, max_steps=7)
    train_lm(config, train, tmp_path / "run", show_progress=False)
    ckpt = latest_checkpoint(tmp_path / "run")
    (ckpt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RnnlabError, match="corrupt"):
        train_lm(config, dataclasses.replace(train, max_steps=9), tmp_path / "run",
                 resume=True, show_progress=False)


def test_corpus_too_small_for_batch_and_bptt(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("just a few characters\n" * 3, encoding="utf-8")
    config = LMConfig(corpus=None, train=str(path), level="char", hidden=8, layers=1,
                      batch_size=64, bptt=35)
    with pytest.raises(RnnlabError, match="too small"):
        train_lm(config, TrainConfig(max_steps=1), tmp_path / "run", show_progress=False)


def test_stop_reason_names_what_ended_the_run(tmp_path, text_file):
    config, train = _configs(text_file)
    train = dataclasses.replace(train, epochs=1)
    assert train_lm(config, train, tmp_path / "epochs", show_progress=False)["stop_reason"] \
        == "epochs"
    config, train = _configs(text_file, max_steps=3)
    assert train_lm(config, train, tmp_path / "steps", show_progress=False)["stop_reason"] \
        == "max steps"
