"""Every classification command as a user runs it (`--max-steps 2` smoke runs), and errors."""

from __future__ import annotations

import json

import pytest
import torch

from rnnlab.cli.main import main

ROWS = [("pos", "a gripping , funny film"), ("neg", "dull and slow"),
        ("pos", "lovely acting"), ("neg", "a poor plot")] * 10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "train.tsv"
    path.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in ROWS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_file):
    run = tmp_path_factory.mktemp("runs") / "rnn"
    torch.set_num_threads(1)
    code = main(["train", "classify", "--train", str(train_file), "--cell", "gru",
                 "--bidirectional", "--pooling", "attention", "--embedding-size", "8",
                 "--hidden", "6", "--batch-size", "8", "--max-steps", "2", "--threads", "1",
                 "--run-dir", str(run), "--quiet", "--format", "json"])
    assert code == 0
    return run


def test_train_prints_a_summary_with_test_scores(tmp_path, train_file, capsys):
    code = main(["train", "classify", "--train", str(train_file), "--model", "cnn",
                 "--embedding-size", "8", "--filter-widths", "2,3", "--filter-maps", "4",
                 "--max-steps", "2", "--threads", "1", "--run-dir", str(tmp_path / "cnn"),
                 "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "test_accuracy:" in out and "test_macro_f1:" in out and "confusion_png:" in out


def test_predict_text_json_and_explain(run_dir, tmp_path, capsys):
    assert main(["predict", str(run_dir), "a funny film", "so dull"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("pos", "neg")
    assert "neg=" in lines[0] and lines[0].endswith("a funny film")

    texts = tmp_path / "texts.txt"
    texts.write_text("a funny film\n\nso dull\n", encoding="utf-8")
    assert main(["predict", str(run_dir), "--file", str(texts), "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().split("\n")]
    assert [r["text"] for r in records] == ["a funny film", "so dull"]
    assert sum(records[0]["probabilities"].values()) == pytest.approx(1.0)
    assert records[0]["tokens"] == ["a", "funny", "film"]
    assert sum(records[0]["attention"]) == pytest.approx(1.0)

    html, png = tmp_path / "strip.html", tmp_path / "strip.png"
    assert main(["predict", str(run_dir), "a funny film", "--explain", "--explain-html",
                 str(html), "--explain-png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "funny(" in out  # not a terminal: weights in brackets instead of colours
    assert html.read_text().count("<span") == 3
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_eval_reports_accuracy_f1_and_confusion_png(run_dir, capsys):
    assert main(["eval", str(run_dir), "--split", "valid", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["macro_f1"] <= 1
    assert sum(map(sum, result["confusion"])) == result["sentences"]
    assert result["confusion_png"].endswith("confusion-valid.png")


def test_user_errors_are_one_line(tmp_path, run_dir, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tsentence\npos\tfine\n", encoding="utf-8")
    assert main(["train", "classify", "--train", str(bad), "--max-steps", "1",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error:") and "bad.tsv:1: no column 'text'" in err
    assert main(["predict", str(run_dir)]) == 2
    assert "nothing to classify" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing"), "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cross_validation_train_and_eval(tmp_path, train_file, capsys):
    run = tmp_path / "cv"
    assert main(["train", "classify", "--train", str(train_file), "--folds", "2", "--model",
                 "cnn", "--embedding-size", "8", "--filter-widths", "2", "--filter-maps", "3",
                 "--max-steps", "1", "--threads", "1", "--run-dir", str(run), "--quiet",
                 "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy_std:" in out and "fold 1: accuracy" in out
    assert main(["predict", str(run), "fine"]) == 2
    assert "use one of its folds" in capsys.readouterr().err


def test_ensemble_averages_its_members(tmp_path, train_file, run_dir, capsys):
    other = tmp_path / "cnn"
    assert main(["train", "classify", "--train", str(train_file), "--model", "cnn",
                 "--embedding-size", "8", "--filter-widths", "2,3", "--filter-maps", "4",
                 "--max-steps", "3", "--seed", "7", "--threads", "1", "--run-dir", str(other),
                 "--quiet"]) == 0
    capsys.readouterr()
    texts = ["a funny film", "so dull"]
    members = []
    for run in (run_dir, other):
        assert main(["predict", str(run), *texts, "--format", "json"]) == 0
        members.append([json.loads(x) for x in capsys.readouterr().out.strip().split("\n")])
    assert main(["predict", str(run_dir), *texts, "--ensemble", str(other), "--format",
                 "json"]) == 0
    joint = [json.loads(x) for x in capsys.readouterr().out.strip().split("\n")]
    for k, record in enumerate(joint):
        for label, p in record["probabilities"].items():
            mean = (members[0][k]["probabilities"][label] + members[1][k]["probabilities"][label])
            assert p == pytest.approx(mean / 2, abs=1e-6)
        assert record["label"] == max(record["probabilities"], key=record["probabilities"].get)
        assert "attention" not in record

    assert main(["eval", str(run_dir), "--split", "valid", "--ensemble", str(other),
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["members"] == [str(run_dir), str(other)]
    assert len(result["member_accuracy"]) == 2 and 0 <= result["accuracy"] <= 1
    assert sum(map(sum, result["confusion"])) == result["sentences"]
    assert result["confusion_png"].endswith("confusion-valid-ensemble.png")
    assert "|model:cnn+rnn|ensemble:2|" in result["signature"]


def test_ensemble_refuses_members_that_do_not_match(tmp_path, train_file, run_dir, capsys):
    three = tmp_path / "three.tsv"
    three.write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in
                                               [("a", "x y"), ("b", "y z"), ("c", "z x")] * 6),
                     encoding="utf-8")
    other = tmp_path / "abc"
    assert main(["train", "classify", "--train", str(three), "--model", "cnn",
                 "--embedding-size", "8", "--filter-widths", "2", "--filter-maps", "3",
                 "--max-steps", "1", "--threads", "1", "--run-dir", str(other), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run_dir), "fine", "--ensemble", str(other)]) == 2
    assert "an ensemble needs the same labels" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "fine", "--ensemble", str(run_dir), "--explain"]) == 2
    assert "cannot be used with --ensemble" in capsys.readouterr().err

    shifted = tmp_path / "shifted"
    assert main(["train", "classify", "--train", str(train_file), "--split-seed", "2",
                 "--model", "cnn", "--embedding-size", "8", "--filter-widths", "2",
                 "--filter-maps", "3", "--max-steps", "1", "--threads", "1", "--run-dir",
                 str(shifted), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--ensemble", str(shifted)]) == 2
    assert "split_seed" in capsys.readouterr().err
    translation = tmp_path / "translation"
    translation.mkdir()
    (translation / "config.json").write_text('{"task": "translate"}', encoding="utf-8")
    assert main(["eval", str(translation), "--ensemble", str(run_dir)]) == 2
    assert "--ensemble is for classifier and tagger runs" in capsys.readouterr().err


@pytest.mark.parametrize("model,pooling", [("transformer", "structured"), ("rnn", "structured"),
                                           ("transformer", "first")])
def test_transformer_and_structured_pooling_train_predict_explain(tmp_path, train_file, model,
                                                                   pooling, capsys):
    run = tmp_path / f"{model}-{pooling}"
    assert main(["train", "classify", "--train", str(train_file), "--model", model,
                 "--pooling", pooling, "--hops", "2", "--embedding-size", "8", "--hidden", "8",
                 "--heads", "2", "--layers", "1", "--batch-size", "8", "--max-steps", "2",
                 "--threads", "1", "--run-dir", str(run), "--quiet", "--format", "json"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["test_accuracy"] <= 1
    if pooling == "first":  # no word weights to show
        assert main(["predict", str(run), "a funny film", "--explain"]) == 2
        assert "attention pooling" in capsys.readouterr().err
        return
    html, png = tmp_path / "strip.html", tmp_path / "strip.png"
    assert main(["predict", str(run), "a funny film", "--explain", "--explain-html", str(html),
                 "--explain-png", str(png)]) == 0
    assert "funny(" in capsys.readouterr().out
    assert html.read_text().count("<span") == 3 and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["predict", str(run), "a funny film", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert sum(record["attention"]) == pytest.approx(1.0)  # the hops' mean, one weight a word
