"""The synthetic memory tasks: their definition, determinism, parameter matching, training."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.diagnostics.memory import (
    MemoryConfig,
    adding_batch,
    copy_batch,
    count_parameters,
    hidden_for_budget,
    make_task,
    memory_study,
    memory_table,
    train_memory,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_adding_problem_definition():
    x, y = adding_batch(10, 64, _gen(0))
    assert x.shape == (10, 64, 2) and y.shape == (64,)
    markers = x[:, :, 1]
    assert torch.equal(markers.sum(0), torch.full((64,), 2.0))  # exactly two marked steps
    assert torch.equal(markers[:5].sum(0), torch.ones(64))  # one in the first half
    assert torch.allclose(y, (x[:, :, 0] * markers).sum(0))
    assert 0 <= float(x[:, :, 0].min()) and float(x[:, :, 0].max()) <= 1


def test_adding_baseline_is_one_sixth():
    _, y = adding_batch(20, 20000, _gen(1))
    assert float(((y - 1) ** 2).mean()) == pytest.approx(1 / 6, abs=0.01)
    assert make_task("adding").baseline == pytest.approx(1 / 6)


def test_copy_task_definition():
    x, y = copy_batch(5, 32, _gen(0), symbols=4)
    assert x.shape == (7, 32, 5)  # first symbol, 5 distractors, query; one-hot over 4 + 1
    assert torch.equal(x.sum(-1), torch.ones(7, 32))
    assert torch.equal(x[0].argmax(-1), y)
    assert torch.equal(x[-1].argmax(-1), torch.full((32,), 4))  # the query symbol
    assert int(x[:-1, :, 4].sum()) == 0  # the query appears only at the end


@pytest.mark.parametrize("make", [lambda g: adding_batch(12, 8, g),
                                  lambda g: copy_batch(12, 8, g)])
def test_tasks_are_deterministic_for_a_seed(make):
    a, b, c = make(_gen(7)), make(_gen(7)), make(_gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_parameter_counts_and_matching():
    # LSTM: 4 gate blocks of (H·I + H·H + 2H) plus the readout H·O + O.
    assert count_parameters("lstm", 2, 10, 1) == 4 * (10 * 2 + 10 * 10 + 20) + 10 + 1
    assert count_parameters("lstm-peephole", 2, 10, 1) == count_parameters("lstm", 2, 10, 1) + 30
    for cell in ("rnn", "lstm", "gru", "gru-minimal"):
        hidden = hidden_for_budget(cell, 9, 8, 3000)
        gaps = [abs(count_parameters(cell, 9, h, 8) - 3000) for h in (hidden - 1, hidden,
                                                                     hidden + 1)]
        assert gaps[1] == min(gaps)


def test_short_copy_is_learned_and_reproducible():
    config = MemoryConfig(task="copy", parameters=400, steps=400, batch=32, lr=2e-2,
                          eval_every=25, eval_size=200, symbols=4)
    first = train_memory("gru", 1, config)
    assert first.solved and first.score >= 0.95 and first.steps < 400
    again = train_memory("gru", 1, config)
    assert (again.steps, again.score) == (first.steps, first.score)


def test_study_stops_after_a_failure_and_tabulates():
    config = MemoryConfig(task="adding", parameters=200, steps=2, eval_every=1, eval_size=50)
    study = memory_study(["rnn", "lstm"], [4, 2], config)
    assert [(r.cell, r.length) for r in study.results] == [("rnn", 2), ("lstm", 2)]
    table = memory_table(study)
    assert "| rnn |" in table and "—" in table and "MSE < 0.01" in table
    assert study.to_dict()["longest_solved"] == {"rnn": None, "lstm": None}


def test_forget_bias_reaches_the_lstm():
    from rnnlab.diagnostics.memory import MemoryModel

    rnn = MemoryModel("lstm", 2, 4, 1, forget_bias=1.0).rnn
    forget = (rnn.bias_ih_l0 + rnn.bias_hh_l0)[4:8]  # gate order i, f, g, o
    assert torch.allclose(forget, torch.ones(4))


@settings(max_examples=25, deadline=None)
@given(length=st.integers(2, 40), batch=st.integers(1, 9), seed=st.integers(0, 10**6))
def test_task_invariants_for_any_length(length, batch, seed):
    x, y = adding_batch(length, batch, _gen(seed))
    markers = x[:, :, 1]
    assert x.shape == (length, batch, 2)
    assert torch.equal(markers[: length // 2].sum(0), torch.ones(batch))
    assert torch.equal(markers[length // 2 :].sum(0), torch.ones(batch))
    assert torch.allclose(y, (x[:, :, 0] * markers).sum(0))
    x, y = copy_batch(length, batch, _gen(seed), symbols=5)
    assert x.shape == (length + 2, batch, 6) and torch.equal(x[0].argmax(-1), y)
