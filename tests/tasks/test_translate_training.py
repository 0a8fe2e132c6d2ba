"""Translation training end to end on generated parallel text: exact resume, run directory,
learning a toy translation, reading the run back."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.errors import RnnlabError
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.run import TranslateRun
from rnnlab.tasks.translate.train import train_translate
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.config import TrainConfig

WORDS = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five",
         "sechs": "six"}


def toy_corpus(folder, pairs: int, seed: int) -> dict[str, str]:
    """Word-for-word translation of numbers, in the same order: learnable in seconds."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(pairs):
        words = [rng.choice(list(WORDS)) for _ in range(rng.randint(1, 5))]
        src.append(" ".join(words))
        tgt.append(" ".join(WORDS[w] for w in words))
    files = {}
    for side, lines in (("de", src), ("en", tgt)):
        for split, part in (("train", lines[40:]), ("valid", lines[:40])):
            path = folder / f"{split}.{side}"
            path.write_text("\n".join(part) + "\n", encoding="utf-8")
            files[f"{'src' if side == 'de' else 'tgt'}_{split}"] = str(path)
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return toy_corpus(tmp_path_factory.mktemp("parallel"), 300, 0)


def _configs(corpus, **train_overrides):
    config = TranslateConfig(corpus=None, **corpus, min_freq=1, embedding=16, hidden=24,
                             dropout=0.1, attention="general", input_feeding=True,
                             batch_size=16, dev_sentences=20)
    train = TrainConfig(optimizer="adamw", lr=5e-3, epochs=3, eval_every=6, log_every=5,
                        seed=3, threads=1, **train_overrides)
    return config, train


def test_resumed_run_equals_uninterrupted_run(tmp_path, corpus):
    config, train = _configs(corpus)
    full = dataclasses.replace(train, max_steps=14)
    half = dataclasses.replace(train, max_steps=7)
    train_translate(config, full, tmp_path / "full", show_progress=False)
    train_translate(config, half, tmp_path / "split", show_progress=False)
    summary = train_translate(config, full, tmp_path / "split", resume=True,
                              show_progress=False)
    assert summary["steps"] == 14
    a = load_file(str(latest_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_run_directory_and_refusal_to_overwrite(tmp_path, corpus):
    config, train = _configs(corpus, max_steps=2)
    train_translate(config, train, tmp_path / "run", show_progress=False)
    for name in ("config.json", "src_vocab.json", "tgt_vocab.json", "model.safetensors",
                 "log.jsonl", "loss.png"):
        assert (tmp_path / "run" / name).exists(), name
    with pytest.raises(RnnlabError, match="--resume"):
        train_translate(config, train, tmp_path / "run", show_progress=False)


def test_learns_a_toy_translation(tmp_path, corpus):
    """Attention + beam search must get a word-for-word number translation nearly right."""
    config, train = _configs(corpus)
    config = dataclasses.replace(config, dev_metric="ppl")
    train_translate(config, dataclasses.replace(train, epochs=12, eval_every=0), tmp_path / "r",
                    show_progress=False)
    run = TranslateRun(tmp_path / "r", device="cpu")
    result = run.evaluate("valid", beam=3)
    assert result["bleu"] > 80, result["bleu"]
    [translation] = run.translate(["drei eins fünf"], beam=3)
    assert translation.text == "three one five"
    assert translation.weights.shape == (4, 4)  # (three one five <eos>) x (drei eins fünf <eos>)
    assert translation.weights.argmax(dim=1)[:3].tolist() == [0, 1, 2]  # a diagonal alignment
