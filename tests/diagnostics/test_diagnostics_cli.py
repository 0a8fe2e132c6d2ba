"""`rnnlab diagnose ...` smoke runs with tiny sizes, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from rnnlab.cli.main import main

TEXT = "".join(f"KING:\nThe line {i} (said he) is \"good\".\n" for i in range(120))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("diag") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, text_file):
    run = tmp_path_factory.mktemp("runs") / "char"
    assert main(["train", "lm", "--train", str(text_file), "--level", "char", "--hidden", "8",
                 "--layers", "2", "--batch-size", "4", "--bptt", "16", "--max-steps", "2",
                 "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    return run


def test_gradients_json(tmp_path, capsys, run_dir, text_file):
    assert main(["diagnose", "gradients", "--cells", "rnn,gru", "--length", "6", "--hidden", "4",
                 "--input-size", "3", "--batch", "2", "--out", str(tmp_path), "--run-dir",
                 str(run_dir), "--text", str(text_file), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["label"] for c in result["curves"]] == ["rnn", "gru", "char (trained)"]
    assert all(len(c["norms"]) == 6 for c in result["curves"] + result["variants"])
    saved = json.loads((tmp_path / "gradients.json").read_text())
    assert saved["curves"][0]["norms"] == result["curves"][0]["norms"]
    assert (tmp_path / "gradients.png").stat().st_size > 0
    assert (tmp_path / "gradients_variants.png").stat().st_size > 0


def test_gradients_text(tmp_path, capsys):
    assert main(["diagnose", "gradients", "--cells", "lstm", "--length", "4", "--hidden", "3",
                 "--batch", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "|dL/dh_1| / |dL/dh_T| at T = 4" in out and "clipping" in out


def test_memory(tmp_path, capsys):
    assert main(["diagnose", "memory", "--task", "adding", "--cells", "rnn,gru-minimal",
                 "--lengths", "3,2", "--steps", "2", "--parameters", "100", "--eval-every", "1",
                 "--out", str(tmp_path), "--keep-going"]) == 0
    out = capsys.readouterr().out
    assert "| gru-minimal |" in out and "T=2 | T=3" in out
    result = json.loads((tmp_path / "memory_adding.json").read_text())
    assert [(r["cell"], r["length"]) for r in result["results"]] == [
        ("rnn", 2), ("rnn", 3), ("gru-minimal", 2), ("gru-minimal", 3)]
    assert (tmp_path / "memory_adding.png").exists() and (tmp_path / "memory_adding.md").exists()


def test_cells(tmp_path, capsys, run_dir, text_file):
    assert main(["diagnose", "cells", str(run_dir), "--text", str(text_file), "--out",
                 str(tmp_path), "--max-chars", "600", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["best_units"]) == {"in_quotes", "position_in_line", "in_brackets",
                                         "speaker_name"}
    assert set(result["saturation"]) == {f"l{k}.{g}" for k in (0, 1) for g in "ifo"}
    html = (tmp_path / "unit.html").read_text()
    assert html.count("<span") == 600
    for name in ("unit.png", "saturation.png", "feature_in_quotes.html", "cells.json"):
        assert (tmp_path / name).exists()
    assert main(["diagnose", "cells", str(run_dir), "--text", str(text_file), "--out",
                 str(tmp_path), "--max-chars", "100", "--unit", "2", "--quantity", "l0.f"]) == 0
    assert "gate l1.f" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["diagnose", "gradients", "--cells", "rnn,nope", "--out", "x"], "unknown cell 'nope'"),
    (["diagnose", "memory", "--steps", "0", "--out", "x"], "--steps: must be at least 1"),
    (["diagnose", "cells", "/no/such/run", "--text", "t", "--out", "x"], "does not exist"),
])
def test_errors_are_one_line(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:  # a bad flag value is refused by argparse itself
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cells_errors(tmp_path, capsys, run_dir, text_file):
    assert main(["diagnose", "cells", str(run_dir), "--text", str(tmp_path / "missing.txt"),
                 "--out", str(tmp_path)]) == 2
    assert main(["diagnose", "cells", str(run_dir), "--text", str(text_file), "--out",
                 str(tmp_path), "--quantity", "l9.h", "--max-chars", "50"]) == 2
    assert "unknown quantity 'l9.h'" in capsys.readouterr().err
