"""ONNX export of the non-recurrent models (Transformer classifier, tagger, GPT, translator;
ConvS2S translator): position lookups against the position tables (fast), and each model's
graphs in onnxruntime against the PyTorch model (max abs diff <= 1e-4, the same argmax, tags,
sampled tokens and greedy translations), run through the client loop the model card shows.

One export takes 5-30 s here (torch.export traces the model), so the default run exports one
Transformer classifier through the CLI (int8) and the matrix of models is marked slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rnnlab.cli.main import main  # noqa: E402
from rnnlab.export import graphs  # noqa: E402
from rnnlab.export.onnx_export import check_parity, export_graph, run_graph  # noqa: E402
from rnnlab.export.positions import GraphPositions, positions_form, sinusoids  # noqa: E402
from rnnlab.export.transformer_graphs import gpt_graphs  # noqa: E402
from rnnlab.nn.positions import LearnedPositions, SinusoidalPositions, sinusoid_table  # noqa: E402

TOLERANCE = 1e-4


pytestmark = pytest.mark.usefixtures("one_thread")


def _export(model, specs, folder):
    """Export every spec (inside the graph forms, as `export_run`) and check it; the paths."""
    from rnnlab.export.scan import scan_form

    paths = []
    with torch.no_grad(), scan_form(model), positions_form(model):
        for spec in specs:
            path = folder / f"{spec.name}.onnx"
            export_graph(spec, path)
            assert check_parity(spec, path) <= TOLERANCE
            paths.append(path)
    return paths


# -- position lookups (no export: fast) -----------------------------------------------------


@pytest.mark.parametrize("dim", [1, 4, 7, 16])
def test_sinusoids_of_any_positions_are_the_table(dim):
    table = sinusoid_table(40, dim)
    assert torch.equal(sinusoids(torch.arange(40), dim), table)
    assert torch.equal(sinusoids(torch.arange(13, 29), dim), table[13:29])


@pytest.mark.parametrize("module", [LearnedPositions(6, 20), SinusoidalPositions(6, 8)])
def test_graph_positions_read_what_the_module_reads(module):
    graph = GraphPositions(module)
    for steps, offset in [(5, 0), (1, 7), (3, 12)]:
        assert torch.equal(graph(steps, offset), module(steps, offset))


def test_positions_form_swaps_back():
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.transformer import TransformerLM

    model = TransformerLM(20, LMConfig(model="transformer", hidden=8, heads=2, layers=1))
    with positions_form(model):
        assert isinstance(model.positions, GraphPositions)
    assert isinstance(model.positions, LearnedPositions)


# -- one trained run through the CLI (default) ---------------------------------------------

TRAIN = "\n".join(["label\ttext"] + [f"pos\ta fine good film {i}" for i in range(6)]
                  + [f"neg\ta dull bad film {i}" for i in range(6)]) + "\n"


def test_transformer_classifier_cli_export_int8(tmp_path, capsys):
    from rnnlab.tasks.classify.run import ClassifyRun

    train = tmp_path / "train.tsv"
    train.write_text(TRAIN, encoding="utf-8")
    run_dir = tmp_path / "run"
    assert main(["train", "classify", "--train", str(train), "--model", "transformer",
                 "--pooling", "structured", "--hops", "2", "--embedding-size", "8", "--hidden",
                 "8", "--heads", "2", "--layers", "1", "--min-freq", "1", "--max-steps", "2",
                 "--threads", "1", "--run-dir", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()  # the training summary
    out = tmp_path / "int8"
    assert main(["export", str(run_dir), "--out", str(out), "--quantize", "int8", "--json",
                 "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["graphs"] == ["classifier.onnx"]
    assert max(result["fp32_max_abs_diff"].values()) <= TOLERANCE
    run = ClassifyRun(run_dir, device="cpu")
    texts = ["a fine good film", "a dull bad film 3 bad", "film"]
    tokens, want, _ = run.read(texts)
    ids = [run.vocab.encode(t) for t in tokens]
    width = max(map(len, ids))
    padded = np.array([i + [0] * (width - len(i)) for i in ids])
    got = run_graph(out / "classifier.onnx",
                    {"tokens": padded, "lengths": np.array([len(i) for i in ids])})
    assert np.abs(got[0] - want.numpy()).max() < 0.05  # int8: close, not exact
    assert got[1].shape == padded.shape and np.allclose(got[1].sum(1), 1, atol=1e-3)
    card = (out / "README.md").read_text("utf-8")
    assert "Transformer" in card and "pooling: structured" in card


# -- every model kind, built directly (slow: one export per graph) -------------------------


def _scaled(model, std):
    """Weights larger than the initialisation, so outputs vary from step to step."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, std)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("pooling, positions", [
    ("first", "learned"), ("structured", "sinusoidal"), ("attention", "learned"),
    ("mean", "sinusoidal"), ("max", "learned"), ("last", "learned")])
def test_transformer_classifier_parity(pooling, positions, tmp_path):
    from rnnlab.tasks.classify.config import ClassifyConfig
    from rnnlab.tasks.classify.model import build_model

    torch.manual_seed(0)
    model = build_model(ClassifyConfig(model="transformer", pooling=pooling, hops=3,
                                       positions=positions, embedding_size=6, hidden=8, heads=2,
                                       layers=2, max_len=20), 30, 3).eval()
    (path,) = _export(model, graphs.classifier_graphs(model, 30), tmp_path)
    tokens = torch.randint(4, 30, (5, 11))  # other sizes than the export's example
    lengths = torch.tensor([11, 3, 1, 7, 11])
    tokens[torch.arange(11)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        logits, weights = model(tokens, lengths)
    got = run_graph(path, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
    assert np.abs(got[0] - torch.softmax(logits, -1).numpy()).max() <= TOLERANCE
    assert (got[0].argmax(1) == logits.argmax(1).numpy()).all()
    assert len(got) == (2 if weights is not None else 1)
    if weights is not None:
        assert np.abs(got[1] - weights.numpy()).max() <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("chars, crf", [("cnn", True), ("none", False)])
def test_transformer_tagger_parity(chars, crf, tmp_path):
    from rnnlab.tasks.tag.config import TagConfig
    from rnnlab.tasks.tag.encode import Batch
    from rnnlab.tasks.tag.model import Tagger

    torch.manual_seed(0)
    model = Tagger(TagConfig(model="transformer", hidden=8, heads=2, layers=2,
                             word_embedding_size=6, char_embedding_size=4, char_hidden=3,
                             char_features=chars, crf=crf), 30, 20, 5).eval()
    spec = graphs.tagger_graphs(model, 30, 20)[0]
    (path,) = _export(model, [spec], tmp_path)
    words, char_ids, char_lengths, lengths = spec.example
    batch = Batch(words, char_ids, char_lengths, lengths, torch.zeros_like(words))
    with torch.no_grad():
        want = model.emissions(batch)
    got = torch.from_numpy(run_graph(path, {n: t.numpy() for n, t in
                                            zip(spec.inputs, spec.example, strict=True)})[0])
    mask = batch.mask
    assert (got - want)[mask].abs().max() <= TOLERANCE
    if crf:
        assert model.crf.decode(got, mask) == model.crf.decode(want, mask)
    else:
        assert (got.argmax(2)[mask] == want.argmax(2)[mask]).all()


@pytest.mark.slow
@pytest.mark.parametrize("positions, norm_first", [("learned", True), ("sinusoidal", False)])
def test_gpt_sampling_parity(positions, norm_first, tmp_path):
    """The card's client loop (prompt, one token a step, restart past the block size) gives
    `TransformerLM.step`'s logits at every step, and so its greedy tokens."""
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.transformer import TransformerLM

    torch.manual_seed(0)
    model = _scaled(TransformerLM(30, LMConfig(model="transformer", hidden=8, heads=2,
                                               layers=2, block_size=10, positions=positions,
                                               norm_first=norm_first)), 0.3)
    (path,) = _export(model, gpt_graphs(model, 30), tmp_path)
    prompt = torch.randint(4, 30, (2, 3))
    empty = np.zeros((2, 2, 2, 0, 4), np.float32)
    state = None
    for t in range(prompt.shape[1]):
        with torch.no_grad():
            want, state = model.step(prompt[:, t], state)
    window = prompt.numpy().tolist()
    logits, keys, values = run_graph(path, {"tokens": prompt.numpy(), "keys": empty,
                                            "values": empty})
    for _ in range(15):  # past the block size of 10: the window restarts
        assert np.abs(logits - want.numpy()).max() <= TOLERANCE
        token = logits.argmax(1)
        assert (token == want.argmax(1).numpy()).all()
        with torch.no_grad():
            want, state = model.step(torch.from_numpy(token), state)
        for row, t in zip(window, token.tolist(), strict=True):
            row.append(t)
        feed = token[:, None]
        if keys.shape[3] + 1 > 10:
            feed, keys, values = np.array([row[-10:] for row in window]), empty, empty
        logits, keys, values = run_graph(path, {"tokens": feed, "keys": keys, "values": values})
    assert np.abs(logits - want.numpy()).max() <= TOLERANCE


def _greedy_parity(model, specs, paths, src_vocab):
    """Greedy translation through the exported encoder and step (the card's client loop)
    equals `model.translate`, with the logits of every step within TOLERANCE."""
    torch.manual_seed(1)
    src = torch.randint(4, src_vocab, (4, 6))
    lengths = torch.tensor([6, 2, 5, 3])
    src[torch.arange(6)[None, :] >= lengths[:, None]] = 0
    want = model.translate(src, lengths, bos_id=2, eos_id=3, beam=1)
    state = dict(zip(specs[0].outputs, run_graph(paths[0], {"src": src.numpy(),
                                                             "lengths": lengths.numpy()}),
                     strict=True))
    with torch.no_grad():
        torch_state = model.encode(src, lengths)
    tokens, outputs = np.full(4, 2), []
    for _ in range(int(lengths.max()) * 2 + 10):
        logits, *rest = run_graph(paths[1], {"tokens": tokens, **state})
        with torch.no_grad():
            want_logits, torch_state = model.step(torch.from_numpy(tokens), torch_state)
        assert np.abs(logits - want_logits.numpy()).max() <= TOLERANCE  # every step
        assert np.abs(rest[-1] - torch_state["weights"].numpy()).max() <= TOLERANCE  # attention
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


def _beam_parity(model, specs, paths, src_vocab, beam=3):
    """rnnlab's own beam search run over the exported graphs, its state reordered along each
    input's `batch` axis as the spec (and meta.json's dynamic_axes) names it, finds what
    `model.translate(beam=...)` finds: the state layout a client's beam search relies on."""
    from rnnlab.decoding.beam import beam_search

    torch.manual_seed(2)
    src = torch.randint(4, src_vocab, (3, 5))
    lengths = torch.tensor([5, 2, 4])
    src[torch.arange(5)[None, :] >= lengths[:, None]] = 0
    want = model.translate(src, lengths, bos_id=2, eos_id=3, beam=beam, alpha=0.6)
    batch_axis = {name: next(a for a, n in axes.items() if n == "batch")
                  for name, axes in specs[1].axes.items()}
    names = specs[1].inputs[1:]
    start = run_graph(paths[0], {"src": src.numpy(), "lengths": lengths.numpy()})
    state = {n: torch.from_numpy(v) for n, v in zip(specs[0].outputs, start, strict=True)}

    def step(tokens, state):
        logits, *rest = run_graph(paths[1], {"tokens": tokens.numpy(),
                                             **{n: state[n].numpy() for n in names}})
        new = dict(state)
        for name, value in zip(specs[1].outputs[1:], rest, strict=True):
            new["weights" if name == "attention" else name.removesuffix("_out")] = \
                torch.from_numpy(value)
        return torch.from_numpy(logits), new

    def reorder(state, rows):
        return {n: v.index_select(batch_axis.get(n, 0), rows) for n, v in state.items()}

    max_lengths = (lengths.float() * 2.0).long() + 10
    if model.max_output_length is not None:
        max_lengths = max_lengths.clamp(max=model.max_output_length)
    got = beam_search(step, state, 2, 3, max_lengths, beam=beam, alpha=0.6, reorder=reorder)
    for g, w in zip(got, want, strict=True):
        assert g.tokens == w.tokens
        assert g.score == pytest.approx(w.score, abs=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("positions, norm_first", [("sinusoidal", False), ("learned", True)])
def test_transformer_translation_greedy_parity(positions, norm_first, tmp_path):
    from rnnlab.export.transformer_graphs import transformer_translate_graphs
    from rnnlab.tasks.translate.build import build_model
    from rnnlab.tasks.translate.config import TranslateConfig

    torch.manual_seed(0)
    config = TranslateConfig(model="transformer", hidden=8, heads=2, layers=2,
                             positions=positions, norm_first=norm_first)
    model = _scaled(build_model(30, 25, config), 0.5)
    specs = transformer_translate_graphs(model, 30, 25)
    paths = _export(model, specs, tmp_path)
    _greedy_parity(model, specs, paths, 30)
    _beam_parity(model, specs, paths, 30)


@pytest.mark.slow
def test_conv_translation_greedy_parity(tmp_path):
    from rnnlab.export.conv_graphs import conv_translate_graphs
    from rnnlab.tasks.translate.build import build_model
    from rnnlab.tasks.translate.config import TranslateConfig

    torch.manual_seed(0)
    config = TranslateConfig(model="conv", hidden=6, embedding=5, layers=2, kernel=3)
    model = _scaled(build_model(30, 25, config), 0.3)
    specs = conv_translate_graphs(model, 30, 25)
    paths = _export(model, specs, tmp_path)
    _greedy_parity(model, specs, paths, 30)
    _beam_parity(model, specs, paths, 30)
