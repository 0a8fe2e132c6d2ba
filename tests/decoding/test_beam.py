"""Beam search against exhaustive search on a toy model; beam 1 == greedy; batched == alone."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.decoding.beam import beam_search, length_penalty, select_batch
from rnnlab.decoding.greedy import greedy_search

VOCAB, BOS, EOS = 4, 0, 3


def toy_model(sentences: int, max_len: int, seed: int):
    """A Markov model whose next-token log-probabilities depend on the sentence, the position
    and the previous token: table[sentence, position, previous] (V,). Its state is a dict of
    (B,) tensors, so the default reorder (batch on dim 0) applies; it also exposes "weights"."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(sentences, max_len, VOCAB, VOCAB, generator=generator) * 2
    log_probs = torch.log_softmax(table, dim=-1)

    def step(tokens, state):
        logits = log_probs[state["sentence"], state["position"], tokens]  # (B, V)
        weights = torch.nn.functional.one_hot(state["position"], max_len).float()
        return logits, {"sentence": state["sentence"], "position": state["position"] + 1,
                        "weights": weights}

    def start(ids):
        ids = torch.tensor(ids)
        return {"sentence": ids, "position": torch.zeros_like(ids), "weights": None}

    return log_probs, step, start


def exhaustive(log_probs, sentence: int, max_len: int, alpha: float):
    """Best (normalised score, tokens) over every output of at most max_len tokens ending in
    <eos> (the max_len-th token is <eos> whatever the model says, as the searches force it)."""
    best = None
    for n in range(max_len):
        for body in itertools.product([t for t in range(VOCAB) if t != EOS], repeat=n):
            previous, score = BOS, 0.0
            for position, token in enumerate((*body, EOS)):
                score += float(log_probs[sentence, position, previous, token])
                previous = token
            normalised = score / length_penalty(n + 1, alpha)
            if best is None or normalised > best[0]:
                best = (normalised, list(body), score)
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_equals_exhaustive_search(alpha, seed):
    max_len = 4  # 1 + 3 + 9 + 27 = 40 possible outputs: a beam of 64 never drops one
    log_probs, step, start = toy_model(2, max_len, seed)
    found = beam_search(step, start([0, 1]), BOS, EOS, torch.tensor([max_len, max_len]),
                        beam=64, alpha=alpha)
    for sentence, hypothesis in enumerate(found):
        _, tokens, score = exhaustive(log_probs, sentence, max_len, alpha)
        assert hypothesis.tokens == tokens
        assert hypothesis.score == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
@pytest.mark.parametrize("seed", range(3))
def test_n_best_of_a_wide_beam_are_the_exhaustive_top_n(alpha, seed):
    max_len = 4
    log_probs, step, start = toy_model(1, max_len, seed)
    ranked = []  # (normalised score, tokens, score) of every possible output
    for n in range(max_len):
        for body in itertools.product([t for t in range(VOCAB) if t != EOS], repeat=n):
            previous, score = BOS, 0.0
            for position, token in enumerate((*body, EOS)):
                score += float(log_probs[0, position, previous, token])
                previous = token
            ranked.append((score / length_penalty(n + 1, alpha), list(body), score))
    ranked.sort(key=lambda entry: -entry[0])
    best = beam_search(step, start([0]), BOS, EOS, torch.tensor([max_len]), beam=64,
                       alpha=alpha, n_best=5)[0]
    found = [best, *best.alternatives]
    assert [h.tokens for h in found] == [tokens for _, tokens, _ in ranked[:5]]
    assert [h.score for h in found] == pytest.approx([score for _, _, score in ranked[:5]])
    with pytest.raises(ValueError, match="n_best"):
        beam_search(step, start([0]), BOS, EOS, torch.tensor([max_len]), beam=2, n_best=3)


@pytest.mark.parametrize("seed", range(6))
def test_narrow_beam_never_beats_exhaustive_and_beats_or_ties_greedy(seed):
    max_len = 4
    log_probs, step, start = toy_model(1, max_len, seed)
    lengths = torch.tensor([max_len])
    beam = beam_search(step, start([0]), BOS, EOS, lengths, beam=3)[0]
    greedy = greedy_search(step, start([0]), BOS, EOS, lengths)[0]
    best = exhaustive(log_probs, 0, max_len, 0.0)
    assert beam.score <= best[2] + 1e-6
    assert beam.score >= greedy.score - 1e-6


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 999), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_beam_one_is_greedy(seed, lengths):
    _, step, start = toy_model(len(lengths), 6, seed)
    ids, limits = list(range(len(lengths))), torch.tensor(lengths)
    greedy = greedy_search(step, start(ids), BOS, EOS, limits)
    beam = beam_search(step, start(ids), BOS, EOS, limits, beam=1)
    for g, b in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        assert g.score == pytest.approx(b.score, abs=1e-5)
        assert torch.equal(g.weights, b.weights)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 999), lengths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       beam=st.integers(1, 5), alpha=st.sampled_from([0.0, 0.6, 1.0]))
def test_batched_equals_one_by_one(seed, lengths, beam, alpha):
    _, step, start = toy_model(len(lengths), 6, seed)
    together = beam_search(step, start(list(range(len(lengths)))), BOS, EOS,
                           torch.tensor(lengths), beam=beam, alpha=alpha)
    for sentence, length in enumerate(lengths):
        alone = beam_search(step, start([sentence]), BOS, EOS, torch.tensor([length]),
                            beam=beam, alpha=alpha)[0]
        assert together[sentence].tokens == alone.tokens
        assert together[sentence].score == pytest.approx(alone.score, abs=1e-5)


def test_outputs_respect_the_length_limit_and_carry_their_attention():
    _, step, start = toy_model(3, 5, 7)
    limits = torch.tensor([1, 3, 5])
    for search in (greedy_search, beam_search):
        for hypothesis, limit in zip(search(step, start([0, 1, 2]), BOS, EOS, limits), limits,
                                     strict=True):
            assert len(hypothesis.tokens) < int(limit)
            # one attention row per output token plus <eos>; the toy attends to its position
            steps = len(hypothesis.tokens) + 1
            assert torch.equal(hypothesis.weights, torch.eye(5)[:steps])


def test_select_batch_handles_nested_states():
    state = ({"h": torch.arange(3)}, [torch.arange(6).view(3, 2), None])
    chosen = select_batch(state, torch.tensor([2, 2, 0]))
    assert chosen[0]["h"].tolist() == [2, 2, 0]
    assert chosen[1][0].tolist() == [[4, 5], [4, 5], [0, 1]]
    assert chosen[1][1] is None


def test_the_same_search_serves_a_language_model():
    """A recurrent LM's state keeps its batch on dim 1 (L, B, H): it passes its own reorder."""
    from rnnlab.tasks.lm.config import LMConfig
    from rnnlab.tasks.lm.model import LanguageModel

    torch.manual_seed(0)
    lm = LanguageModel(7, LMConfig(cell="lstm", hidden=8, layers=2, dropout=0.0,
                                   dropout_output=0.0)).eval()

    def reorder(state, indices):
        return None if state is None else tuple(s.index_select(1, indices) for s in state)

    limits = torch.tensor([6, 6])
    greedy = greedy_search(lm.step, None, 2, 3, limits)
    one = beam_search(lm.step, None, 2, 3, limits, beam=1, reorder=reorder)
    wide = beam_search(lm.step, None, 2, 3, limits, beam=4, reorder=reorder)
    assert [h.tokens for h in one] == [h.tokens for h in greedy]
    assert all(w.score >= g.score - 1e-6 for w, g in zip(wide, greedy, strict=True))
