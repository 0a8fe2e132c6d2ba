"""Cell activations: recomputed gates agree with the recurrence, features by hand, and the unit
search finds a unit planted in a synthetic model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnlab.data.vocab import Vocab
from rnnlab.diagnostics.cells import (
    best_units,
    correlations,
    record_activations,
    render_html,
    saturation,
    text_features,
)
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.model import LanguageModel

TEXT = "ROMEO:\nSay (it is) \"so\" now.\nJULIET:\n(Yes) no (ay (ay)) go.\n"


def _model(cell: str, vocab: Vocab, hidden: int = 6, layers: int = 2) -> LanguageModel:
    torch.manual_seed(0)
    config = LMConfig(cell=cell, hidden=hidden, layers=layers, embedding_size=len(vocab),
                      dropout=0.0, dropout_output=0.0)
    return LanguageModel(len(vocab), config)


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "gru", "gru-minimal", "rnn"])
def test_recorded_gates_reproduce_the_recurrence(cell):
    vocab = Vocab(sorted(set(TEXT)))
    acts = record_activations(_model(cell, vocab), vocab.encode(TEXT))
    for layer in ("l0", "l1"):
        h = acts[f"{layer}.h"]
        h_prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])
        assert h.shape == (len(TEXT), 6)
        if cell.startswith("lstm"):
            c = acts[f"{layer}.c"]
            c_prev = np.vstack([np.zeros((1, c.shape[1])), c[:-1]])
            i, f, g, o = (acts[f"{layer}.{q}"] for q in "ifgo")
            np.testing.assert_allclose(c, f * c_prev + i * g, atol=1e-6)
            np.testing.assert_allclose(h, o * np.tanh(c), atol=1e-6)
        elif cell.startswith("gru"):
            z, n = acts[f"{layer}.z"], acts[f"{layer}.n"]
            np.testing.assert_allclose(h, (1 - z) * n + z * h_prev, atol=1e-6)
            assert (f"{layer}.r" in acts) == (cell == "gru")
        else:
            assert set(acts) == {"l0.h", "l1.h"}


def test_the_model_is_stepped_like_its_forward():
    vocab = Vocab(sorted(set(TEXT)))
    model = _model("lstm", vocab).eval()
    ids = vocab.encode(TEXT)
    acts = record_activations(model, ids)
    with torch.no_grad():
        out, _ = model.rnn(model.embedding(torch.tensor(ids)).unsqueeze(1))  # (N, 1, H)
    np.testing.assert_allclose(acts["l1.h"], out[:, 0].numpy(), atol=1e-5)


def test_text_features_by_hand():
    feats = text_features('AB:\na "b" (c(d)) e\n')
    assert feats["speaker_name"].tolist() == [1, 1, 1] + [0] * 16
    assert feats["in_quotes"][6:10].tolist() == [1, 1, 0, 0]  # after '"', 'b', '"', ' '
    assert feats["in_brackets"][10:17].tolist() == [1, 1, 1, 1, 1, 0, 0]  # '(' .. ')', ')', ' '

    assert feats["position_in_line"][:6].tolist() == [1, 2, 3, 0, 1, 2]
    assert text_features("Not a speaker: no\n")["speaker_name"].sum() == 0


def test_correlations_match_numpy():
    rng = np.random.default_rng(0)
    values, feature = rng.normal(size=(50, 4)), rng.normal(size=50)
    values[:, 2] = 3.0  # a constant unit has no correlation (not NaN)
    r = correlations(values, feature)
    for u in (0, 1, 3):
        assert r[u] == pytest.approx(np.corrcoef(values[:, u], feature)[0, 1])
    assert r[2] == 0


def test_unit_search_finds_a_planted_bracket_counter():
    # Unit 3 of an LSTM: i and f open (bias +20), g = tanh(±20) on '(' / ')', else 0, so its
    # memory cell counts the bracket depth; the other units keep their random weights.
    text = "a (b c) d (e (f) g) h\n" * 20
    vocab = Vocab(sorted(set(text)))
    model = _model("lstm", vocab, hidden=8, layers=1)
    unit, big, hidden = 3, 20.0, 8
    with torch.no_grad():
        model.embedding.weight.copy_(torch.eye(len(vocab)))
        for weight in (model.rnn.weight_ih_l0, model.rnn.weight_hh_l0):
            weight[unit :: hidden] = 0.0  # rows of unit 3 in the i, f, g, o blocks
        model.rnn.bias_ih_l0[unit :: hidden] = torch.tensor([big, big, 0.0, 0.0])
        model.rnn.bias_hh_l0[unit :: hidden] = 0.0
        model.rnn.weight_ih_l0[2 * hidden + unit, vocab.stoi["("]] = big
        model.rnn.weight_ih_l0[2 * hidden + unit, vocab.stoi[")"]] = -big
    acts = record_activations(model, vocab.encode(text))
    found = best_units(acts, text_features(text), top=2)
    # the planted cell and its h = o tanh(c) (o = σ(0) = 1/2): both are unit 3
    assert {(m.quantity, m.unit) for m in found["in_brackets"]} == {("l0.c", unit),
                                                                    ("l0.h", unit)}
    assert all(m.r > 0.9 for m in found["in_brackets"])
    assert "in_quotes" not in found  # no quotes in the text: nothing to find


def test_saturation_by_hand():
    gate = np.array([[0.05, 0.5], [0.5, 0.95], [0.95, 0.99], [0.5, 0.5]])
    stats = saturation({"l0.f": gate, "l0.h": gate, "l0.g": gate})
    assert set(stats) == {"l0.f"}
    assert stats["l0.f"]["low_per_unit"] == [0.25, 0.0]
    assert stats["l0.f"]["high_per_unit"] == [0.25, 0.5]
    assert stats["l0.f"]["low"] == pytest.approx(0.125)


def test_render_html_one_span_per_character():
    text = 'a<b "c"\nd'
    page = render_html(text, np.linspace(-1, 1, len(text)), "unit 0")
    assert page.count("<span") == len(text)
    assert "&lt;" in page and "<br>" in page and "rgb(0,0,255)" in page
