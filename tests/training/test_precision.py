"""`--precision`: bf16 autocast trains every kind of model with float32 weights, resumes
exactly, may change on --resume; fp16 on the CPU is one line that names bf16."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.cli.main import main
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.log import read_log

TEXT = "\n".join(f"line {i} says hello to the little world of rnnlab" for i in range(300)) + "\n"
TAGGED = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\n" * 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("precision") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def train_lm(corpus, run, steps, *extra):
    assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "16",
                 "--layers", "2", "--dropout", "0.3", "--batch-size", "4", "--bptt", "16",
                 "--threads", "1", "--max-steps", str(steps), "--run-dir", str(run), "--quiet",
                 *extra]) == 0
    return load_file(str(latest_checkpoint(run) / "model.safetensors"))


def test_bf16_resumes_exactly_with_float32_weights(tmp_path, corpus):
    straight = train_lm(corpus, tmp_path / "straight", 4, "--precision", "bf16")
    train_lm(corpus, tmp_path / "split", 2, "--precision", "bf16")
    resumed = train_lm(corpus, tmp_path / "split", 4, "--precision", "bf16", "--resume")
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        assert tensor.dtype == torch.float32, name
        assert torch.equal(tensor, resumed[name]), name
    kept = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in kept.values())


def test_bf16_is_not_fp32(tmp_path, corpus):
    """The flag does something: the same run in fp32 ends with other weights."""
    bf16 = train_lm(corpus, tmp_path / "bf16", 2, "--precision", "bf16")
    fp32 = train_lm(corpus, tmp_path / "fp32", 2)
    assert any(not torch.equal(bf16[name], fp32[name]) for name in fp32)


def test_resume_may_change_the_precision(tmp_path, corpus):
    run = tmp_path / "run"
    train_lm(corpus, run, 2)
    train_lm(corpus, run, 4, "--precision", "bf16", "--resume")
    start = [r for r in read_log(run) if r["kind"] == "start"][-1]
    assert start["changes"]["precision"] == ["fp32", "bf16"]
    assert json.loads((run / "config.json").read_text())["train"]["precision"] == "bf16"


def test_fp16_on_the_cpu_is_one_line_naming_bf16(tmp_path, corpus, capsys):
    run = tmp_path / "fp16"
    assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--max-steps", "1",
                 "--device", "cpu", "--precision", "fp16", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fp16" in err and "--precision bf16" in err
    assert not run.exists()


def test_unknown_precision_is_refused(tmp_path, corpus, capsys):
    with pytest.raises(SystemExit):
        main(["train", "lm", "--train", str(corpus), "--precision", "fp8",
              "--run-dir", str(tmp_path / "r")])
    assert "fp8" in capsys.readouterr().err


def test_transformer_lm_trains_in_bf16(tmp_path, corpus, capsys):
    assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--model",
                 "transformer", "--hidden", "16", "--heads", "2", "--layers", "1",
                 "--block-size", "16", "--batch-size", "4", "--eval-windows", "2",
                 "--max-steps", "2", "--log-every", "1", "--precision", "bf16", "--threads",
                 "1", "--run-dir", str(tmp_path / "gpt"), "--quiet", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["final"]["loss"] > 0
    losses = [r["loss"] for r in read_log(tmp_path / "gpt") if r["kind"] == "train"]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)


def test_crf_tagger_trains_and_evaluates_in_bf16(tmp_path, capsys):
    train = tmp_path / "eng.train"
    train.write_text(TAGGED, encoding="utf-8")
    run = tmp_path / "ner"
    assert main(["train", "tag", "--train", str(train), "--valid", str(train), "--crf",
                 "--char-features", "lstm", "--hidden", "8", "--word-embedding-size", "8",
                 "--char-hidden", "4", "--max-steps", "2", "--precision", "bf16", "--threads",
                 "1", "--run-dir", str(run), "--quiet", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and 0 <= summary["final"]["f1"] <= 1
    assert main(["eval", str(run), "--split", "valid", "--format", "json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["f1"] <= 1
