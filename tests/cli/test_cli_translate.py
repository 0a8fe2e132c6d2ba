"""Every translation command as a user runs it (`--max-steps 2` smoke runs), and its errors."""

from __future__ import annotations

import io
import json

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.cli.main import main
from rnnlab.training.checkpoint import latest_checkpoint

SRC = ["ein hund läuft", "eine katze schläft", "zwei hunde laufen", "der mann isst"] * 10
TGT = ["a dog runs", "a cat sleeps", "two dogs run", "the man eats"] * 10


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parallel")
    return {"src": _write(folder / "t.de", SRC), "tgt": _write(folder / "t.en", TGT)}


def _train_args(files, run_dir, *extra):
    return ["train", "translate", "--src-train", files["src"], "--tgt-train", files["tgt"],
            "--src-valid", files["src"], "--tgt-valid", files["tgt"], "--src-test", files["src"],
            "--tgt-test", files["tgt"], "--min-freq", "1", "--embedding", "8", "--hidden", "8",
            "--batch-size", "8", "--dev-sentences", "4", "--threads", "1", "--seed", "5",
            "--run-dir", str(run_dir), "--quiet", *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, files):
    run = tmp_path_factory.mktemp("runs") / "bahdanau"
    assert main(_train_args(files, run, "--attention", "bahdanau", "--max-steps", "2")) == 0
    return run


def test_train_translate_and_eval(run_dir, capsys):
    assert main(["eval", str(run_dir), "--split", "test", "--beam", "2", "--alpha", "0.5",
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["beam"] == 2 and result["sentences"] == len(SRC)
    for key in ("bleu", "chrf", "ppl", "bleu_signature", "chrf_signature", "ppl_signature"):
        assert key in result
    assert "case:lc" in result["bleu_signature"]
    assert main(["eval", str(run_dir), "--split", "test", "--beam", "1"]) == 0
    assert "bleu:" in capsys.readouterr().out


def test_translate_file_stdin_and_attention_plots(run_dir, tmp_path, capsys, monkeypatch):
    source = _write(tmp_path / "in.de", ["ein hund", "eine katze läuft"])
    plots = tmp_path / "plots"
    assert main(["translate", str(run_dir), "--file", source, "--beam", "2",
                 "--attention-plot", str(plots)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert sorted(p.name for p in plots.iterdir()) == ["attention-0001.png",
                                                       "attention-0002.png"]
    monkeypatch.setattr("sys.stdin", io.StringIO("der mann\n"))
    assert main(["translate", str(run_dir), "--beam", "1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "der mann"


def test_n_best_lists_the_beams_runners_up(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("ein hund\neine katze läuft\n"))
    assert main(["translate", str(run_dir), "--beam", "3", "--n-best", "3",
                 "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for record in records:
        ranked = record["n_best"]
        assert ranked[0] == {"translation": record["translation"], "score": record["score"]}
        assert len(ranked) == 3  # a tiny vocabulary still finishes three hypotheses
        assert len({r["translation"] for r in ranked}) == 3  # three different hypotheses
        assert all(isinstance(r["score"], float) and r["score"] < 0 for r in ranked)
    monkeypatch.setattr("sys.stdin", io.StringIO("ein hund\n"))
    assert main(["translate", str(run_dir), "--beam", "3", "--n-best", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("ein hund\n"))
    assert main(["translate", str(run_dir), "--beam", "2", "--n-best", "3"]) == 2
    assert "n_best must be between 1 and the beam (2), got 3" in capsys.readouterr().err


@pytest.mark.parametrize("attention", ["none", "general", "dot", "concat"])
def test_other_attentions_train(tmp_path, files, attention):
    extra = ["--attention", attention, "--max-steps", "2", "--dev-metric", "ppl"]
    if attention in ("general", "dot"):
        extra += ["--input-feeding"]
    if attention == "dot":
        extra += ["--no-bidirectional", "--local"]
    if attention == "none":
        extra += ["--reverse-source"]
    assert main(_train_args(files, tmp_path / attention, *extra)) == 0


def test_cli_resume_is_exact(tmp_path, files, capsys):
    common = ["--attention", "general", "--input-feeding", "--eval-every", "3"]
    assert main(_train_args(files, tmp_path / "full", *common, "--max-steps", "6")) == 0
    assert main(_train_args(files, tmp_path / "split", *common, "--max-steps", "3")) == 0
    capsys.readouterr()
    assert main(_train_args(files, tmp_path / "split", *common, "--max-steps", "6",
                            "--resume", "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 6
    a = load_file(str(latest_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "split") / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_line_count_mismatch_is_one_line_error(tmp_path, files, capsys):
    short = _write(tmp_path / "short.en", TGT[:-1])
    args = _train_args(files, tmp_path / "bad", "--max-steps", "1")
    args[args.index("--tgt-train") + 1] = short
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "40 lines but" in err and "39" in err


def test_translate_and_eval_refuse_a_missing_or_foreign_run(tmp_path, files, capsys):
    for argv in (["translate", str(tmp_path / "nope"), "--file", files["src"]],
                 ["eval", str(tmp_path / "nope"), "--beam", "2"]):
        assert main(argv) == 2
        assert "does not exist" in capsys.readouterr().err


NON_RECURRENT = {  # model: (flags, attention heads)
    "conv": (["--model", "conv", "--layers", "2", "--kernel", "3"], 1),
    "transformer": (["--model", "transformer", "--layers", "2", "--heads", "2"], 2),
}


@pytest.mark.parametrize("model", sorted(NON_RECURRENT))
def test_non_recurrent_models_train_resume_eval_translate_and_plot(tmp_path, files, capsys,
                                                                  model):
    run = tmp_path / model
    flags, heads = NON_RECURRENT[model]
    extra = [*flags, "--label-smoothing", "0.1", "--schedule", "inverse-sqrt",
             "--warmup", "2", "--max-steps", "2"]
    assert main(_train_args(files, run, *extra)) == 0
    capsys.readouterr()
    extra[-1] = "3"
    assert main(_train_args(files, run, *extra, "--resume", "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    assert main(["eval", str(run), "--split", "test", "--beam", "2", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert f"model:{model}" in result["ppl_signature"] and result["sentences"] == len(SRC)
    source = _write(tmp_path / "in.de", ["ein hund", "eine katze läuft"])
    plots = tmp_path / "plots"
    assert main(["translate", str(run), "--file", source, "--beam", "2", "--attention-plot",
                 str(plots), "--attention-layer", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    expected = {f"attention-000{i}{head}.png" for i in (1, 2)
                for head in ["", *(f"-head{h}" for h in range(1, heads + 1) if heads > 1)]}
    assert {p.name for p in plots.iterdir()} == expected
    assert main(["translate", str(run), "--file", source, "--attention-plot", str(plots),
                 "--attention-layer", "9"]) == 2
    assert "--attention-layer must be in 1..2" in capsys.readouterr().err
