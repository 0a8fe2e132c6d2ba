"""`rnnlab plot RUN_DIR ... --out FILE.png`: several runs on one PNG, one panel per curve."""

from __future__ import annotations

import matplotlib.image
import pytest

from rnnlab.cli.main import main

TEXT = "\n".join(f"line {i} says hello to the little world of rnnlab" for i in range(300)) + "\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot")
    corpus = folder / "train.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    made = []
    for lr in ("0.01", "0.003"):
        run = folder / f"lr{lr}"
        assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "8",
                     "--layers", "1", "--batch-size", "4", "--bptt", "8", "--threads", "1",
                     "--max-steps", "2", "--log-every", "1", "--lr", lr, "--run-dir",
                     str(run), "--quiet"]) == 0
        made.append(run)
    return made


def test_plot_draws_the_runs_on_one_png(runs, tmp_path, capsys):
    out = tmp_path / "both.png"
    assert main(["plot", *map(str, runs), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    two_panels = matplotlib.image.imread(out).shape[1]  # training loss + dev loss
    assert main(["plot", *map(str, runs), "--out", str(out), "--metric", "loss", "ppl"]) == 0
    assert matplotlib.image.imread(out).shape[1] == pytest.approx(two_panels * 3 / 2, abs=2)


def test_folders_that_are_not_runs_are_one_line_errors(runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "x.png")
    cases = [([str(runs[0]), str(empty)], "is not a training run: it has no log.jsonl"),
             ([str(tmp_path / "missing")], "is not a folder"),
             ([str(runs[0]), "--metric", "bleu"], "no run logged a dev 'bleu'"),
             ([str(runs[0]), "--out", str(tmp_path / "no" / "x.png")], "does not exist")]
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "log.jsonl").write_text("", encoding="utf-8")
    cases.append(([str(tmp_path / "blank")], "holds no records"))
    for args, message in cases:
        assert main(["plot", *args, *([] if "--out" in args else ["--out", out])]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
