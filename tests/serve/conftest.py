"""Tiny trained runs of every servable task (`--max-steps 2`), made once per test session."""

from __future__ import annotations

import pytest
import torch

from rnnlab.cli.main import main

CLASSIFY_ROWS = [("pos", "a gripping , funny film"), ("neg", "dull and slow"),
                 ("pos", "lovely acting"), ("neg", "a poor plot")] * 10
NER = """EU NNP I-ORG
rejects VBZ O
German JJ I-MISC
call NN O

Peter NNP I-PER
Blackburn NNP I-PER

BRUSSELS NNP I-LOC
1996-08-22 CD O
"""
SRC = ["ein hund läuft", "eine katze schläft", "zwei hunde laufen", "der mann isst"] * 10
TGT = ["a dog runs", "a cat sleeps", "two dogs run", "the man eats"] * 10
LM_TEXT = "\n".join(f"line {i} says hello to the little world of rnnlab" for i in range(200))


def _train(*args: str) -> None:
    torch.set_num_threads(1)
    assert main(["train", *args, "--max-steps", "2", "--threads", "1", "--quiet"]) == 0


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict:
    """name -> run directory: sentiment (classify), ner (tag), de-en (translate), chars (lm)."""
    root = tmp_path_factory.mktemp("serve-runs")
    data = root / "data"
    data.mkdir()
    (data / "train.tsv").write_text(
        "label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in CLASSIFY_ROWS), encoding="utf-8")
    (data / "eng.train").write_text(NER, encoding="utf-8")
    (data / "t.de").write_text("\n".join(SRC) + "\n", encoding="utf-8")
    (data / "t.en").write_text("\n".join(TGT) + "\n", encoding="utf-8")
    (data / "lm.txt").write_text(LM_TEXT + "\n", encoding="utf-8")
    out = {name: root / name for name in ("sentiment", "ner", "de-en", "chars")}
    _train("classify", "--train", str(data / "train.tsv"), "--pooling", "attention",
           "--embedding-size", "8", "--hidden", "6", "--batch-size", "8",
           "--run-dir", str(out["sentiment"]))
    ner = str(data / "eng.train")
    _train("tag", "--train", ner, "--valid", ner, "--test", ner, "--crf", "--scheme", "bio",
           "--hidden", "8", "--word-embedding-size", "8", "--char-hidden", "4",
           "--run-dir", str(out["ner"]))
    files = [str(data / "t.de"), str(data / "t.en")]
    _train("translate", "--src-train", files[0], "--tgt-train", files[1],
           "--src-valid", files[0], "--tgt-valid", files[1], "--min-freq", "1",
           "--embedding", "8", "--hidden", "8", "--batch-size", "8", "--dev-sentences", "4",
           "--attention", "bahdanau", "--run-dir", str(out["de-en"]))
    _train("lm", "--train", str(data / "lm.txt"), "--level", "char", "--hidden", "16",
           "--layers", "1", "--batch-size", "4", "--bptt", "16", "--run-dir", str(out["chars"]))
    return out


@pytest.fixture(scope="session")
def models(runs) -> dict:
    """The four runs behind their serve adapters, by name."""
    from rnnlab.serve.models import load_models

    return load_models([runs[name] for name in ("sentiment", "ner", "de-en", "chars")],
                       device="cpu")


TRANSFORMER = ("--model", "transformer", "--hidden", "8", "--heads", "2", "--layers", "1")
ATTENTION_NAMES = ("gpt-cls", "han-cls", "gpt-ner", "gpt-chars", "gpt-de-en", "conv-de-en")


@pytest.fixture(scope="session")
def attention_runs(tmp_path_factory) -> dict:
    """name -> run directory of the non-recurrent models (test_attention_models.py)."""
    root = tmp_path_factory.mktemp("serve-attention-runs")
    data = root / "data"
    data.mkdir()
    (data / "train.tsv").write_text(
        "label\ttext\n" + "".join(f"{a}\t{b}. it is {b}!\n" for a, b in CLASSIFY_ROWS),
        encoding="utf-8")
    (data / "eng.train").write_text(NER, encoding="utf-8")
    (data / "t.de").write_text("\n".join(SRC) + "\n", encoding="utf-8")
    (data / "t.en").write_text("\n".join(TGT) + "\n", encoding="utf-8")
    (data / "lm.txt").write_text(LM_TEXT + "\n", encoding="utf-8")
    out = {name: root / name for name in ATTENTION_NAMES}
    train_tsv = str(data / "train.tsv")
    _train("classify", "--train", train_tsv, *TRANSFORMER, "--pooling", "structured", "--hops",
           "2", "--embedding-size", "8", "--batch-size", "8", "--run-dir", str(out["gpt-cls"]))
    _train("classify", "--train", train_tsv, "--model", "han", "--embedding-size", "8",
           "--hidden", "4", "--batch-size", "8", "--run-dir", str(out["han-cls"]))
    ner = str(data / "eng.train")
    _train("tag", "--train", ner, "--valid", ner, "--test", ner, "--crf", "--scheme", "bio",
           *TRANSFORMER, "--word-embedding-size", "8", "--char-hidden", "4",
           "--run-dir", str(out["gpt-ner"]))
    _train("lm", "--train", str(data / "lm.txt"), "--level", "char", *TRANSFORMER,
           "--block-size", "16", "--batch-size", "4", "--run-dir", str(out["gpt-chars"]))
    files = ("--src-train", str(data / "t.de"), "--tgt-train", str(data / "t.en"),
             "--src-valid", str(data / "t.de"), "--tgt-valid", str(data / "t.en"),
             "--min-freq", "1", "--batch-size", "8", "--dev-sentences", "4")
    _train("translate", *files, *TRANSFORMER, "--run-dir", str(out["gpt-de-en"]))
    _train("translate", *files, "--model", "conv", "--embedding", "8", "--hidden", "8",
           "--layers", "2", "--run-dir", str(out["conv-de-en"]))
    return out
