"""Classifier training end to end on generated sentences: it learns, resumes exactly,
cross-validates, reads pretrained vectors, and reads back for predict/eval/explain."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.errors import RnnlabError
from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.explain import explain_html, explain_terminal
from rnnlab.tasks.classify.run import ClassifyRun, evaluate_run
from rnnlab.tasks.classify.train import cross_validate, train_classify
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.config import TrainConfig

GOOD, BAD = ["great", "fine", "lovely"], ["awful", "dull", "poor"]
FILLER = ["the", "film", "was", "a", "plot", "and", "cast"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _sentences(n, seed):
    """Each sentence holds filler words and one sentiment word that decides its label."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if label == "pos" else BAD))
        rows.append((label, " ".join(words)))
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classify")
    paths = {}
    for split, n, seed in (("train", 240, 0), ("valid", 40, 1), ("test", 40, 2)):
        path = folder / f"{split}.tsv"
        path.write_text("label\ttext\n" + "".join(f"{lab}\t{txt}\n" for lab, txt
                                                  in _sentences(n, seed)), encoding="utf-8")
        paths[split] = str(path)
    return paths


def _config(files, **overrides):
    base = ClassifyConfig(corpus=None, train=files["train"], valid=files["valid"],
                          test=files["test"], embedding_size=12, hidden=8, dropout=0.1,
                          batch_size=16, eval_batch_size=32, filter_widths="2,3",
                          filter_maps=6)
    return dataclasses.replace(base, **overrides)


@pytest.mark.parametrize("model", ["rnn", "cnn"])
def test_learns_the_keyword_rule(tmp_path, files, model):
    train = TrainConfig(lr=0.02, epochs=6, seed=1, patience=3)
    summary = train_classify(_config(files, model=model), train, tmp_path / "run",
                             show_progress=False)
    assert summary["test_accuracy"] >= 0.9
    for name in ("config.json", "vocab.json", "model.safetensors", "log.jsonl", "loss.png",
                 "confusion-test.png", "results.json", "best.json"):
        assert (tmp_path / "run" / name).exists(), name
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert sum(map(sum, results["test"]["confusion"])) == 40


def test_resumed_run_equals_uninterrupted_run(tmp_path, files):
    config = _config(files)
    full = TrainConfig(lr=0.01, epochs=3, eval_every=7, seed=3, max_steps=25)
    half = dataclasses.replace(full, max_steps=12)
    train_classify(config, full, tmp_path / "full", show_progress=False)
    train_classify(config, half, tmp_path / "split", show_progress=False)
    summary = train_classify(config, full, tmp_path / "split", resume=True, show_progress=False)
    assert summary["steps"] == 25
    a = load_file(str(latest_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    with pytest.raises(RnnlabError, match="--resume"):
        train_classify(config, full, tmp_path / "full", show_progress=False)


def test_cross_validation_trains_one_model_per_fold(tmp_path, files):
    config = _config(files, valid=None, test=None, folds=3, model="cnn")
    summary = train_classify(config, TrainConfig(max_steps=4, seed=2), tmp_path / "cv",
                             show_progress=False)
    accuracies = [f["test_accuracy"] for f in summary["folds"]]
    assert len(accuracies) == 3 and summary["test_accuracy"] == pytest.approx(sum(accuracies) / 3)
    for k in range(3):
        assert (tmp_path / "cv" / f"fold-{k}" / "results.json").exists()
    again = evaluate_run(tmp_path / "cv")
    assert [f["test_accuracy"] for f in again["folds"]] == pytest.approx(accuracies)
    with pytest.raises(RnnlabError, match="cross-validation run"):
        ClassifyRun(tmp_path / "cv")


def test_cross_validation_in_parts_equals_one_sitting(tmp_path, files):
    config = _config(files, valid=None, test=None, folds=2, model="cnn")
    train = TrainConfig(max_steps=3, seed=2)
    whole = cross_validate(config, train, tmp_path / "whole", show_progress=False)
    part = cross_validate(config, train, tmp_path / "parts", show_progress=False,
                          budget_minutes=1e-9)
    assert "stopped" in part and part["folds"] == []
    rest = cross_validate(config, train, tmp_path / "parts", resume=True, show_progress=False)
    assert [f["test_accuracy"] for f in rest["folds"]] == [
        f["test_accuracy"] for f in whole["folds"]]


def test_pretrained_embeddings_are_loaded_and_frozen(tmp_path, files):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("great " + " ".join(["0.5"] * 12) + "\nzebra " + " ".join(["1"] * 12)
                       + "\n", encoding="utf-8")
    config = _config(files, embeddings=str(vectors), freeze=True)
    summary = train_classify(config, TrainConfig(max_steps=3), tmp_path / "run",
                             show_progress=False)
    assert any("1 of" in note and "have a vector" in note for note in summary["notes"])
    run = ClassifyRun(tmp_path / "run")
    row = run.model.embedding.weight[run.vocab.stoi["great"]]
    assert torch.allclose(row, torch.full((12,), 0.5))  # frozen: unchanged by training


def test_predict_evaluate_and_explain(tmp_path, files):
    train_classify(_config(files), TrainConfig(lr=0.02, epochs=4, seed=1), tmp_path / "run",
                   show_progress=False)
    run = ClassifyRun(tmp_path / "run")
    predictions = run.predict(["The film was GREAT", "a dull plot and a poor cast"])
    assert [p.label for p in predictions] == ["pos", "neg"]
    first = predictions[0]
    assert first.tokens == ["the", "film", "was", "great"]
    assert sum(first.probabilities.values()) == pytest.approx(1.0)
    assert sum(first.attention) == pytest.approx(1.0) and len(first.attention) == 4
    assert "great(" in explain_terminal(first, colour=False)
    assert "\x1b[48;5;" in explain_terminal(first, colour=True)
    assert explain_html(predictions).count("<span") == 4 + 7
    result = run.evaluate("test")
    assert result["sentences"] == 40 and result["accuracy"] >= 0.9
    assert result["signature"].startswith("accuracy|corpus:train.tsv|split:test")
    with pytest.raises(RnnlabError, match="text 2 is empty"):
        run.predict(["fine", "  ...  "[:0]])
    assert run.predict([]) == []  # no texts, no answers (not an error from torch.stack)
    _, probabilities, _ = run.read([])
    assert probabilities.shape == (0, 2)
