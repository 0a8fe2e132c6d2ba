"""The model card's client code, run as a user runs it (in the export folder, onnxruntime and
NumPy only), gives what rnnlab's own predict / translate give for the same text: for the models
whose client code differs from the recurrent ones' (HAN, NBSVM, GPT, Transformer and ConvS2S
translation). Slow: a tiny training run and an export each."""

from __future__ import annotations

import contextlib
import io
import re
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rnnlab.cli.main import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

TEXTS = [("pos", "A gripping, funny film. I loved it!"), ("neg", "Dull and slow. A poor plot."),
         ("pos", "Lovely acting. Great fun!"), ("neg", "Bad. I hated the plot.")] * 6
SRC = ["ein mann fährt fahrrad .", "eine katze schläft", "zwei hunde laufen"] * 8
TGT = ["a man rides a bike .", "a cat sleeps", "two dogs run"] * 8


def _train_and_export(tmp_path, *args):
    run, out = tmp_path / "run", tmp_path / "onnx"
    assert main(["train", *args, "--max-steps", "3", "--threads", "1", "--run-dir", str(run),
                 "--quiet"]) == 0
    assert main(["export", str(run), "--out", str(out), "--threads", "1"]) == 0
    return run, out


def _run_card(out, monkeypatch) -> tuple[dict, str]:
    """Execute the card's Python block in the export folder: its variables and its output."""
    card = (out / "README.md").read_text("utf-8")
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    monkeypatch.chdir(out)
    monkeypatch.setattr(sys, "path", [str(out), *sys.path])
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(out / "README.md"), "exec"), namespace)  # noqa: S102
    return namespace, printed.getvalue()


@pytest.mark.parametrize("model", ["han", "nbsvm"])
def test_document_classifier_card(model, tmp_path, monkeypatch):
    from rnnlab.tasks.classify.run import ClassifyRun

    train = tmp_path / "train.tsv"
    train.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in TEXTS), "utf-8")
    extra = ["--hidden", "4", "--embedding-size", "6"] if model == "han" else ["--ngrams", "2"]
    run_dir, out = _train_and_export(tmp_path, "classify", "--train", str(train), "--model",
                                     model, "--min-freq", "1", *extra)
    found, _ = _run_card(out, monkeypatch)
    want = ClassifyRun(run_dir, device="cpu").predict([found["text"]])[0]
    got = found["probabilities"][0]
    assert np.abs(got - np.array(list(want.probabilities.values()))).max() <= 1e-4
    if model == "han":
        assert len(found["ids"]) == len(want.sentences)
        assert np.abs(found["sentence_weights"][0] - want.sentence_attention).max() <= 1e-4


def test_gpt_card_samples_past_the_block_size(tmp_path, monkeypatch):
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(f"line {i} says hello" for i in range(100)) + "\n", "utf-8")
    _, out = _train_and_export(tmp_path, "lm", "--train", str(text), "--level", "char",
                               "--model", "transformer", "--hidden", "8", "--heads", "2",
                               "--layers", "1", "--block-size", "12", "--batch-size", "4")
    found, printed = _run_card(out, monkeypatch)
    assert len(printed.split(" ")) >= 40  # 40 tokens sampled, the cache restarted on the way
    assert found["keys"].shape[3] <= 12


@pytest.mark.parametrize("model", ["transformer", "conv"])
def test_translation_card_translates_as_rnnlab(model, tmp_path, monkeypatch):
    from rnnlab.tasks.translate.run import TranslateRun

    src, tgt = tmp_path / "t.de", tmp_path / "t.en"
    src.write_text("\n".join(SRC) + "\n", "utf-8")
    tgt.write_text("\n".join(TGT) + "\n", "utf-8")
    sizes = (["--heads", "2", "--layers", "1"] if model == "transformer"
             else ["--embedding", "8", "--layers", "2"])
    run_dir, out = _train_and_export(
        tmp_path, "translate", "--src-train", str(src), "--tgt-train", str(tgt), "--src-valid",
        str(src), "--tgt-valid", str(tgt), "--min-freq", "1", "--batch-size", "8",
        "--dev-sentences", "3", "--model", model, "--hidden", "8", *sizes)
    _, printed = _run_card(out, monkeypatch)
    want = TranslateRun(run_dir, device="cpu").translate(["ein mann fährt fahrrad ."], 1)[0]
    assert printed.strip() == want.text
    int8 = tmp_path / "int8"  # the int8 graphs run through the same client loop
    assert main(["export", str(run_dir), "--out", str(int8), "--quantize", "int8",
                 "--threads", "1"]) == 0
    found, _ = _run_card(int8, monkeypatch)
    assert set(found["out"]) <= set(found["tgt_itos"])
