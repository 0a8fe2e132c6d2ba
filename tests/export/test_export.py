"""ONNX export: the scan form against the layers, the NumPy Viterbi against the CRF's, exported
graphs in onnxruntime against the PyTorch models (every task, every cell), the exported tagger
run without rnnlab, the `rnnlab export` command and its one-line errors.

Exporting one graph takes tens of seconds (torch.export traces the model), so the default run
exports two trained runs (a tagger and a classifier, through the CLI) and the matrix of tasks x
cells is marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rnnlab.cli.main import main  # noqa: E402
from rnnlab.export import graphs  # noqa: E402
from rnnlab.export.card import training_command  # noqa: E402
from rnnlab.export.onnx_export import check_parity, export_graph, run_graph  # noqa: E402
from rnnlab.export.runtime.tag_decoder import viterbi as numpy_viterbi  # noqa: E402
from rnnlab.export.scan import ScanRecurrent, scan_form  # noqa: E402
from rnnlab.nn.crf import CRF, scheme_constraints  # noqa: E402
from rnnlab.nn.crf import viterbi as torch_viterbi  # noqa: E402
from rnnlab.nn.factory import CELLS, make_recurrent  # noqa: E402

CELL_KINDS = ("rnn", "lstm", "gru", "lstm-peephole", "gru-minimal")
TOLERANCE = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


# -- the scan form computes what the layers compute (no export: fast) -----------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_scan_form_matches_the_layer(cell, bidirectional):
    torch.manual_seed(0)
    layer = make_recurrent(cell, 4, 5, 2, bidirectional=bidirectional, batch_first=True).eval()
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    state = tuple(torch.randn(2 * (2 if bidirectional else 1), 3, 5) for _ in _parts(layer(x)[1]))
    state = state if len(state) == 2 else state[0]
    want, want_state = layer(x, state, lengths=lengths)
    got, got_state = ScanRecurrent(layer)(x, state, lengths=lengths)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    for g, w in zip(_parts(got_state), _parts(want_state), strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_scan_step_matches_the_layer_step(cell):
    torch.manual_seed(0)
    layer = make_recurrent(cell, 4, 5, 2).eval()
    x = torch.randn(3, 4)
    want, want_state = layer.step(x)
    got, got_state = ScanRecurrent(layer).step(x)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    want, want_state = layer.step(x, want_state)
    got, got_state = ScanRecurrent(layer).step(x, got_state)
    for g, w in zip(_parts(got_state), _parts(want_state), strict=True):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)


def test_scan_form_swaps_back():
    model = torch.nn.Sequential(make_recurrent("gru", 3, 4))
    with scan_form(model):
        assert isinstance(model[0], ScanRecurrent)
    assert not isinstance(model[0], ScanRecurrent)


# -- the shipped NumPy Viterbi is the CRF's ---------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_numpy_viterbi_matches_the_crf(seed):
    torch.manual_seed(seed)
    tags = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    crf = CRF(len(tags), scheme_constraints(tags, "bio"))
    torch.nn.init.normal_(crf.transitions)
    emissions = torch.randn(1, 1 + seed * 3, len(tags)) * 2
    mask = torch.ones(emissions.shape[:2], dtype=torch.bool)
    want = torch_viterbi(emissions, mask, *crf.scores())[0]
    got = numpy_viterbi(emissions[0].numpy(), *(s.detach().numpy() for s in crf.scores()))
    assert got == want


def test_training_command_names_the_settings_that_differ():
    info = {"task": "tag", "config": {"corpus": "conll2003", "crf": True, "hidden": 100,
                                      "constrained": False},
            "train": {"minutes": 5.0, "threads": 1, "lr": 2e-3, "device": "cpu"}}
    assert training_command(info) == ("rnnlab train tag --corpus conll2003 --no-constrained "
                                      "--crf --minutes 5.0 --threads 1")


# -- trained runs through the CLI ----------------------------------------------------------------

TRAIN_TAGS = """EU NNP B-ORG
rejects VBZ O
German JJ B-MISC
call NN O

Peter NNP B-PER
Blackburn NNP I-PER

BRUSSELS NNP B-LOC
1996-08-22 CD O
"""
SENTENCES = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"],
             ["BRUSSELS", "1996-08-22", "unseen", "Wörds", "call", "Peter", "EU"], ["x"]]


@pytest.fixture(scope="module")
def tagger_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-tag")
    train = folder / "train.conll"
    train.write_text(TRAIN_TAGS, encoding="utf-8")
    run = folder / "run"
    assert main(["train", "tag", "--train", str(train), "--valid", str(train), "--crf",
                 "--char-features", "lstm", "--hidden", "6", "--word-embedding-size", "5",
                 "--char-hidden", "3", "--char-embedding-size", "4", "--max-steps", "2",
                 "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    out = folder / "onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out), "--threads", "1"]) == 0
    return run, out


def test_exported_tagger_matches_pytorch(tagger_export):
    from rnnlab.export.runtime.tag_decoder import Tagger
    from rnnlab.tasks.tag.data import Sentence
    from rnnlab.tasks.tag.encode import collate
    from rnnlab.tasks.tag.run import TagRun

    run_dir, out = tagger_export
    run = TagRun(run_dir, device="cpu")
    exported = Tagger(out)
    batch = collate([run.vocab.encode(Sentence(words, [])) for words in SENTENCES])
    with torch.no_grad():
        want = run.model.emissions(batch).numpy()
    got = exported.emissions(SENTENCES)
    mask = batch.mask.numpy()
    assert np.abs(got - want)[mask].max() <= TOLERANCE
    assert exported.tag(SENTENCES) == run.predict([Sentence(w, []) for w in SENTENCES])
    files = set(os.listdir(out))
    assert {"tagger.onnx", "vocab.json", "chars.json", "tags.json", "crf.json", "meta.json",
            "README.md", "tag_decoder.py"} <= files
    card = (out / "README.md").read_text("utf-8")
    assert "rnnlab train tag" in card and "onnxruntime" in card and "Viterbi" in card


def test_exported_tagger_runs_without_rnnlab(tagger_export, tmp_path):
    """A fresh interpreter that cannot import rnnlab or torch tags with the shipped decoder."""
    run_dir, out = tagger_export
    from rnnlab.tasks.tag.data import Sentence
    from rnnlab.tasks.tag.run import TagRun

    want = TagRun(run_dir, device="cpu").predict([Sentence(w, []) for w in SENTENCES])
    script = tmp_path / "client.py"
    script.write_text(
        "import sys\n"
        "sys.path = [p for p in sys.path if 'rnnlab' not in p and '/src' not in p]\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "for banned in ('rnnlab', 'torch'):\n"
        "    sys.modules[banned] = None  # importing it now fails\n"
        "from tag_decoder import main\n"
        "sys.argv = ['tag_decoder.py', sys.argv[1]]\n"
        "sys.exit(main())\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    text = "\n".join(" ".join(words) for words in SENTENCES) + "\n"
    done = subprocess.run([sys.executable, "-I", str(script), str(out)], input=text,
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [[pair.rsplit("/", 1)[1] for pair in line.split()] for line in lines] == want


TRAIN_CLASSIFY = "\n".join(["label\ttext"] + [f"pos\ta fine good film {i}" for i in range(6)]
                           + [f"neg\ta dull bad film {i}" for i in range(6)]) + "\n"


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-classify")
    train = folder / "train.tsv"
    train.write_text(TRAIN_CLASSIFY, encoding="utf-8")
    run = folder / "run"
    assert main(["train", "classify", "--train", str(train), "--cell", "lstm-peephole",
                 "--embedding-size", "6", "--hidden", "5", "--min-freq", "1", "--max-steps",
                 "2", "--threads", "1", "--run-dir", str(run), "--quiet"]) == 0
    return run


def test_export_classifier_cli_int8(classify_run, tmp_path, capsys):
    from rnnlab.tasks.classify.run import ClassifyRun

    out = tmp_path / "int8"
    assert main(["export", str(classify_run), "--out", str(out), "--quantize", "int8",
                 "--json", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["quantize"] == "int8" and result["graphs"] == ["classifier.onnx"]
    assert max(result["fp32_max_abs_diff"].values()) <= TOLERANCE
    run = ClassifyRun(classify_run, device="cpu")
    # five sentences: the graph's batch axis must not be the export example's (three)
    texts = ["a fine good film", "a dull bad film 3 bad", "film", "good", "bad dull film"]
    tokens, want, _ = run.read(texts)
    ids = [run.vocab.encode(t) for t in tokens]
    width = max(map(len, ids))
    padded = np.array([i + [0] * (width - len(i)) for i in ids])
    got = run_graph(out / "classifier.onnx",
                    {"tokens": padded, "lengths": np.array([len(i) for i in ids])})
    assert np.abs(got[0] - want.numpy()).max() < 0.05  # int8: close, not exact
    assert got[1].shape == padded.shape and np.allclose(got[1].sum(1), 1, atol=1e-3)
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    assert meta["quantize"] == "int8" and meta["labels"] == run.labels


@pytest.mark.parametrize("argv, message", [
    (["export", "{missing}", "--out", "{out}"], "does not exist"),
    (["export", "{corrupt}", "--out", "{out}"], "corrupt"),
    (["export", "{ngram}", "--out", "{out}"], "n-gram model"),
    (["export", "{run}", "--out", "{out}", "--format", "tflite"], "unknown export format"),
    (["export", "{run}", "--out", "{out}", "--quantize", "int4"], "unknown quantization"),
    (["export", "{run}", "--out", "{file}"], "is a file"),
    (["export", "{run}", "--out", "{full}"], "--force"),
])
def test_one_line_errors(classify_run, tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json", encoding="utf-8")
    ngram = tmp_path / "ngram"
    ngram.mkdir()
    (ngram / "config.json").write_text('{"task": "ngram"}', encoding="utf-8")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x", encoding="utf-8")
    names = {"missing": tmp_path / "nope", "corrupt": corrupt, "ngram": ngram,
             "run": classify_run, "out": tmp_path / "out", "file": tmp_path / "file",
             "full": tmp_path / "full"}
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error:") and message in err and "\n" not in err


# -- every task x every cell, models built directly (slow: one export each) --------------------


def _classifier(cell):
    from rnnlab.tasks.classify.config import ClassifyConfig
    from rnnlab.tasks.classify.model import build_model

    return build_model(ClassifyConfig(cell=cell, embedding_size=6, hidden=5, layers=2,
                                      embedding_init=0.5), 30, 3).eval()


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELL_KINDS)
def test_classifier_parity(cell, tmp_path):
    torch.manual_seed(0)
    model = _classifier(cell)
    tokens = torch.randint(4, 30, (5, 11))
    lengths = torch.tensor([11, 3, 1, 7, 11])
    tokens[torch.arange(11)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        logits, weights = model(tokens, lengths)
    with scan_form(model):
        spec = graphs.classifier_graphs(model, 30)[0]
        path = tmp_path / "classifier.onnx"
        export_graph(spec, path)
    probs, attention = run_graph(path, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
    assert np.abs(probs - torch.softmax(logits, -1).numpy()).max() <= TOLERANCE
    assert np.abs(attention - weights.numpy()).max() <= TOLERANCE
    assert (probs.argmax(1) == logits.argmax(1).numpy()).all()


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELL_KINDS)
def test_language_model_step_parity(cell, tmp_path):
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(30, LMConfig(cell=cell, hidden=6, layers=2)).eval()
    with scan_form(model):
        spec = graphs.lm_graphs(model, 30)[0]
        path = tmp_path / "lm_step.onnx"
        export_graph(spec, path)
    tokens = torch.randint(4, 30, (8, 4))  # 8 steps of a batch of 4
    state, onnx_state = None, None
    for step_tokens in tokens:
        with torch.no_grad():
            logits, state = model.step(step_tokens, state)
        if onnx_state is None:
            onnx_state = [np.zeros((2, 4, 6), np.float32) for _ in _parts(state)]
        got = run_graph(path, {"tokens": step_tokens.numpy(),
                               **dict(zip(spec.inputs[1:], onnx_state, strict=True))})
        onnx_state = got[1:]
        assert np.abs(got[0] - logits.numpy()).max() <= TOLERANCE
        assert (got[0].argmax(1) == logits.argmax(1).numpy()).all()


@pytest.mark.slow
@pytest.mark.parametrize("chars, crf", [("lstm", True), ("cnn", False), ("none", True)])
def test_tagger_parity(chars, crf, tmp_path):
    """The tagger's word encoder is always a BiLSTM; its character features and output vary."""
    from rnnlab.tasks.tag.config import TagConfig
    from rnnlab.tasks.tag.encode import Batch
    from rnnlab.tasks.tag.model import Tagger

    torch.manual_seed(0)
    model = Tagger(TagConfig(hidden=5, word_embedding_size=6, char_embedding_size=4,
                             char_hidden=3, char_features=chars, crf=crf), 30, 20, 5).eval()
    with scan_form(model):
        spec = graphs.tagger_graphs(model, 30, 20)[0]
        path = tmp_path / "tagger.onnx"
        export_graph(spec, path)
    words, char_ids, char_lengths, lengths = spec.example
    batch = Batch(words, char_ids, char_lengths, lengths, torch.zeros_like(words))
    with torch.no_grad():
        want = model.emissions(batch)
    got = run_graph(path, {n: t.numpy() for n, t in zip(spec.inputs, spec.example, strict=True)})
    got_emissions = torch.from_numpy(got[0])
    mask = batch.mask
    assert (got_emissions - want)[mask].abs().max() <= TOLERANCE
    if crf:
        assert model.crf.decode(got_emissions, mask) == model.crf.decode(want, mask)
    else:
        assert (got_emissions.argmax(2)[mask] == want.argmax(2)[mask]).all()


@pytest.mark.slow
@pytest.mark.parametrize("cell, attention, feeding", [
    ("gru", "bahdanau", False), ("lstm", "general", True), ("rnn", "none", False),
    ("lstm-peephole", "dot", False), ("gru-minimal", "concat", True)])
def test_translation_greedy_parity(cell, attention, feeding, tmp_path):
    from rnnlab.tasks.translate.config import TranslateConfig
    from rnnlab.tasks.translate.model import Seq2Seq

    torch.manual_seed(0)
    config = TranslateConfig(cell=cell, embedding=6, hidden=5, attention=attention,
                             input_feeding=feeding, bidirectional=attention != "dot")
    model = Seq2Seq(30, 25, config).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # larger than torch's init: outputs vary by step
            parameter.normal_(0.0, 0.7)
    with scan_form(model):
        specs = graphs.translate_graphs(model, 30, 25)
        for spec in specs:
            export_graph(spec, tmp_path / f"{spec.name}.onnx")
            check_parity(spec, tmp_path / f"{spec.name}.onnx")
    src = torch.randint(4, 30, (4, 6))
    lengths = torch.tensor([6, 2, 5, 3])
    src[torch.arange(6)[None, :] >= lengths[:, None]] = 0
    want = model.translate(src, lengths, bos_id=2, eos_id=3, beam=1)
    names = specs[0].outputs
    state = dict(zip(names, run_graph(tmp_path / "encoder.onnx",
                                      {"src": src.numpy(), "lengths": lengths.numpy()}),
                     strict=True))
    tokens = np.full(4, 2)
    outputs = []
    limit = int((lengths.float() * 2).long().max()) + 10
    with torch.no_grad():
        torch_state = model.encode(src, lengths)
    for _ in range(limit):
        logits, *rest = run_graph(tmp_path / "decoder_step.onnx", {"tokens": tokens, **state})
        with torch.no_grad():
            want_logits, torch_state = model.step(torch.from_numpy(tokens), torch_state)
        assert np.abs(logits - want_logits.numpy()).max() <= TOLERANCE  # every step, not one
        tokens = logits.argmax(1)
        outputs.append(tokens)
        for name, value in zip(specs[1].outputs[1:], rest, strict=True):
            if name.removesuffix("_out") in state:
                state[name.removesuffix("_out")] = value
    outputs = np.stack(outputs, 1)
    for row, hyp, length in zip(outputs, want, lengths.tolist(), strict=True):
        row = row[: int(length * 2) + 9].tolist()  # greedy_search ends the last with <eos>
        got = row[: row.index(3)] if 3 in row else row
        assert got == hyp.tokens


def test_graph_specs_name_their_dynamic_axes():
    model = _classifier("gru")
    spec = graphs.classifier_graphs(model, 30)[0]
    shapes = spec.dynamic_shapes()
    assert set(shapes[0]) == {0, 1} and set(shapes[1]) == {0}
    assert shapes[0][0] is shapes[1][0]  # one batch axis shared by both inputs
