"""The n-gram model against hand-computed probabilities and a dict-based Kneser-Ney oracle.

The oracle (`ReferenceKN`) is written straight from Chen & Goodman 1998 (section 3, interpolated
modified Kneser-Ney) with tuples and Counters, one probability at a time; the model under test
counts with sorted int64 keys and evaluates whole distributions at once. The conventions they
share are the model's documented ones: the stream's start padded with N-1 <bos>, continuation
counts below the top order, discounts from each order's own counts (KenLM's fallback when the
closed form fails), a uniform distribution over every id except <pad> and <bos> at the bottom.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.tasks.ngram import NGramConfig, NGramModel

PAD, UNK, BOS, EOS = Vocab.pad_id, Vocab.unk_id, Vocab.bos_id, Vocab.eos_id
SMOOTHINGS = ("kneser-ney", "add-k")


def zipf_stream(n: int, vocab_size: int, seed: int, unused: int = 1) -> np.ndarray:
    """A word-like stream: ids 1 and 3.. with Zipfian frequencies; the last `unused` ids never
    occur, so every test also meets words the model never saw."""
    rng = np.random.default_rng(seed)
    words = np.array([UNK, EOS, *range(4, vocab_size - unused)])
    weights = 1.0 / np.arange(1, len(words) + 1)
    return rng.choice(words, size=n, p=weights / weights.sum())


# --- the oracle ------------------------------------------------------------------------------


def reference_discounts(counts: Counter) -> tuple[float, float, float]:
    n = [sum(1 for c in counts.values() if c == i) for i in (1, 2, 3, 4)]
    if min(n) == 0:
        return (0.5, 1.0, 1.5)
    y = n[0] / (n[0] + 2 * n[1])
    d = (1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2])
    return d if all(0 < d[i] <= i + 1 for i in range(3)) else (0.5, 1.0, 1.5)


class ReferenceKN:
    """p(w | h) by the textbook recursion, one word and one context at a time."""

    def __init__(self, stream, vocab_size: int, order: int) -> None:
        padded = [BOS] * (order - 1) + [int(x) for x in stream]
        self.order, self.support = order, [w for w in range(vocab_size) if w not in (PAD, BOS)]
        self.counts = {order: Counter(tuple(padded[j - order + 1 : j + 1])
                                      for j in range(order - 1, len(padded)))}
        for k in range(order - 1, 0, -1):  # N1+(. h w): one per distinct left extension x
            self.counts[k] = Counter(gram[1:] for gram in self.counts[k + 1])
        self.discounts = {k: reference_discounts(c) for k, c in self.counts.items()}
        self.by_context = {k: defaultdict(list) for k in self.counts}
        for k, counts in self.counts.items():
            for gram, c in counts.items():
                self.by_context[k][gram[:-1]].append(c)

    def prob(self, w: int, h: tuple[int, ...], k: int | None = None) -> float:
        k = self.order if k is None else k
        if w in (PAD, BOS):
            return 0.0
        if k == 0:
            return 1 / len(self.support)
        h = h[len(h) - (k - 1) :] if k > 1 else ()
        lower = self.prob(w, h[1:] if h else (), k - 1)
        seen = self.by_context[k].get(h)
        if not seen:
            return lower
        total, (d1, d2, d3) = sum(seen), self.discounts[k]
        n1 = sum(1 for c in seen if c == 1)
        n2 = sum(1 for c in seen if c == 2)
        n3 = sum(1 for c in seen if c >= 3)
        gamma = (d1 * n1 + d2 * n2 + d3 * n3) / total
        c = self.counts[k].get(h + (w,), 0)
        discount = (0.0, d1, d2, d3)[min(c, 3)]
        return max(c - discount, 0.0) / total + gamma * lower


# --- hand-checkable cases -----------------------------------------------------------------------


def test_add_one_bigram_by_hand():
    # corpus "a b a c <eos>" with a=4, b=5, c=6; support {<unk>, <eos>, a, b, c}: |S| = 5
    a, b, c = 4, 5, 6
    model = NGramModel.fit([a, b, a, c, EOS], 7, NGramConfig(order=2, smoothing="add-k", k=1))
    p = np.exp(model.log_probs([a]))  # c(a .) = 2: (count + 1) / (2 + 5)
    np.testing.assert_allclose(p, [0, 1 / 7, 0, 1 / 7, 1 / 7, 2 / 7, 2 / 7])
    p = np.exp(model.log_probs([]))  # context <bos>: seen once, followed by a
    np.testing.assert_allclose(p, [0, 1 / 6, 0, 1 / 6, 2 / 6, 1 / 6, 1 / 6])
    p = np.exp(model.log_probs([EOS]))  # <eos> is never a context in training: uniform
    np.testing.assert_allclose(p, [0, 1 / 5, 0, 1 / 5, 1 / 5, 1 / 5, 1 / 5])
    expected = np.log([2 / 6, 2 / 7, 2 / 6, 2 / 7, 2 / 6])  # p(a|<bos>) p(b|a) p(a|b) ...
    np.testing.assert_allclose(model.score_stream([a, b, a, c, EOS]), expected)


def test_kneser_ney_discounts_by_hand():
    # count-of-counts n1..n4 = 4, 3, 2, 1: Y = 4/10, D1 = 0.4, D2 = 2 - 3*0.4*2/3 = 1.2,
    # D3+ = 3 - 4*0.4*1/2 = 2.2
    from rnnlab.tasks.ngram.counting import estimate_discounts

    counts = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 7])
    np.testing.assert_allclose(estimate_discounts(counts), (0.4, 1.2, 2.2))
    assert estimate_discounts(np.array([1, 2, 3])) == (0.5, 1.0, 1.5)  # no n4: fallback


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_kneser_ney_matches_reference_for_every_context(order, seed):
    V = 8
    stream = zipf_stream(600 if seed == 0 else 40, V, seed)
    model = NGramModel.fit(stream, V, NGramConfig(order=order))
    reference = ReferenceKN(stream, V, order)
    for k, d in reference.discounts.items():
        np.testing.assert_allclose(model.discounts[k], d, rtol=1e-12)
    if seed == 0 and order > 2:  # the closed-form estimate, not only the fallback, is exercised
        assert any(d != (0.5, 1.0, 1.5) for d in model.discounts.values())
    for h in itertools.product(range(V), repeat=order - 1):  # seen and unseen contexts
        expected = [reference.prob(w, h) for w in range(V)]
        np.testing.assert_allclose(np.exp(model.log_probs(list(h))), expected, rtol=1e-10)


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 10])
def test_distributions_sum_to_one_seen_and_unseen(order, smoothing):
    V = 30
    stream = zipf_stream(2000, V, seed=order, unused=3)
    model = NGramModel.fit(stream, V, NGramConfig(order=order, smoothing=smoothing))
    rng = np.random.default_rng(order)
    seen = [stream[max(t - order + 1, 0) : t] for t in rng.integers(0, len(stream), 20)]
    unseen = [rng.integers(0, V, size=order + 2) for _ in range(20)]  # pads and unused ids too
    for context in seen + unseen + [[]]:
        p = np.exp(model.log_probs(context))
        assert p.shape == (V,)
        assert p[PAD] == 0 and p[BOS] == 0
        assert np.all(np.delete(p, [PAD, BOS]) > 0)
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    stream=st.lists(st.sampled_from([UNK, EOS, 4, 5, 6]), min_size=1, max_size=60),
    context=st.lists(st.integers(0, 7), max_size=6),
    order=st.integers(1, 5),
    smoothing=st.sampled_from(SMOOTHINGS),
)
def test_any_tiny_corpus_gives_distributions(stream, context, order, smoothing):
    """Degenerate count-of-counts (the discount fallback) still give proper distributions."""
    model = NGramModel.fit(stream, 8, NGramConfig(order=order, smoothing=smoothing, k=0.5))
    p = np.exp(model.log_probs(context))
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    assert p[PAD] == 0 and p[BOS] == 0 and np.all(np.delete(p, [PAD, BOS]) > 0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5, 10])
def test_score_stream_equals_log_probs_lookups(order, smoothing):
    V = 20
    model = NGramModel.fit(zipf_stream(1500, V, 0), V, NGramConfig(order, smoothing))
    held_out = zipf_stream(120, V, 1, unused=0)  # includes the id the training never saw
    scores = model.score_stream(held_out)
    expected = [model.log_probs(held_out[:t])[held_out[t]] for t in range(len(held_out))]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 3, 5])
def test_step_follows_log_probs(order, smoothing):
    V = 20
    model = NGramModel.fit(zipf_stream(1500, V, 0), V, NGramConfig(order, smoothing))
    rows = torch.as_tensor(np.stack([zipf_stream(7, V, seed) for seed in (3, 4, 5)]))  # (3, 7)
    logits, state = model.step(torch.full((3,), BOS), None)  # feed <bos> first
    for t in range(rows.shape[1] + 1):
        assert logits.shape == (3, V) and logits.dtype == torch.float32
        for b in range(3):
            expected = torch.from_numpy(model.log_probs(rows[b, :t])).float()
            torch.testing.assert_close(logits[b], expected)
        if t < rows.shape[1]:
            logits, state = model.step(rows[:, t], state)
    assert state.shape == (3, order - 1)


def test_inputs_of_any_kind_give_the_same_model():
    stream = zipf_stream(300, 12, 0)
    a = NGramModel.fit(stream.tolist(), 12, NGramConfig(order=3))
    b = NGramModel.fit(torch.as_tensor(stream), 12, NGramConfig(order=3))
    c = NGramModel.fit(stream.astype(np.int32), 12, NGramConfig(order=3))
    for other in (b, c):
        np.testing.assert_array_equal(a.score_stream(stream), other.score_stream(stream))


@pytest.mark.parametrize(
    "kwargs",
    [{"order": 0}, {"order": 11}, {"smoothing": "witten-bell"}, {"smoothing": "add-k", "k": 0.0}],
)
def test_bad_config_is_refused(kwargs):
    with pytest.raises(RnnlabError):
        NGramConfig(**kwargs)


@pytest.mark.parametrize("stream", [[], [4, 2, 5], [4, 0], [4, 99], [[4, 5]]])
def test_bad_streams_are_refused(stream):
    with pytest.raises(RnnlabError):
        NGramModel.fit(stream, 10, NGramConfig(order=2))


# --- storage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_save_load_round_trip(tmp_path, smoothing):
    stream = zipf_stream(800, 15, 0)
    model = NGramModel.fit(stream, 15, NGramConfig(order=4, smoothing=smoothing, k=0.1))
    model.save(tmp_path / "run")
    loaded = NGramModel.load(tmp_path / "run")
    assert loaded.config == model.config and loaded.vocab_size == 15
    assert loaded.discounts == model.discounts
    held_out = zipf_stream(100, 15, 1, unused=0)
    np.testing.assert_array_equal(loaded.score_stream(held_out), model.score_stream(held_out))
    assert sorted(os.listdir(tmp_path / "run")) == ["ngram.json", "ngram.npz"]


def corrupt_json(run: Path) -> None:
    (run / "ngram.json").write_text("{not json")


def corrupt_config(run: Path) -> None:
    meta = json.loads((run / "ngram.json").read_text())
    meta["config"]["window"] = 3
    (run / "ngram.json").write_text(json.dumps(meta))


def truncate_arrays(run: Path) -> None:
    data = (run / "ngram.npz").read_bytes()
    (run / "ngram.npz").write_bytes(data[: len(data) // 2])


def unsort_keys(run: Path) -> None:
    with np.load(run / "ngram.npz") as data:
        arrays = dict(data)
    arrays["gram_keys_2"] = arrays["gram_keys_2"][::-1].copy()
    np.savez(run / "ngram.npz", **arrays)


def drop_array(run: Path) -> None:
    with np.load(run / "ngram.npz") as data:
        arrays = {k: v for k, v in data.items() if k != "ctx_keys_1"}
    np.savez(run / "ngram.npz", **arrays)


def remove_arrays(run: Path) -> None:
    (run / "ngram.npz").unlink()


@pytest.mark.parametrize(
    "damage",
    [corrupt_json, corrupt_config, truncate_arrays, unsort_keys, drop_array, remove_arrays],
)
def test_corrupt_model_files_raise(tmp_path, damage):
    NGramModel.fit(zipf_stream(300, 10, 0), 10, NGramConfig(order=3)).save(tmp_path)
    damage(tmp_path)
    with pytest.raises(RnnlabError):
        NGramModel.load(tmp_path)


def test_missing_directory_raises(tmp_path):
    with pytest.raises(RnnlabError, match="missing"):
        NGramModel.load(tmp_path / "nothing-here")


# --- PTB (slow) -------------------------------------------------------------------------------


def ptb_ids(split: str, vocab: Vocab | None = None) -> tuple[np.ndarray, Vocab]:
    root = Path(os.environ.get("RNNLAB_DATA", Path(__file__).resolve().parents[3] / "shared/data"))
    path = root / "ptb" / f"ptb.{split}.txt"
    if not path.exists():
        pytest.skip(f"PTB not found at {path}")
    tokens = [t for line in path.read_text().splitlines() for t in [*line.split(), "<eos>"]]
    vocab = vocab or Vocab.build(tokens)
    return np.array(vocab.encode(tokens)), vocab


@pytest.mark.slow
def test_ptb_kneser_ney_5gram_perplexity():
    train, vocab = ptb_ids("train")
    test, _ = ptb_ids("test", vocab)
    start = time.perf_counter()
    model = NGramModel.fit(train, len(vocab), NGramConfig(order=5))
    perplexity = math.exp(-model.score_stream(test).mean())
    assert time.perf_counter() - start < 60
    assert 135 < perplexity <= 150  # classic KN5 figure: 141.2 (Mikolov et al. 2011)
