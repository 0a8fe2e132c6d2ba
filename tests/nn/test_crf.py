"""The CRF against brute-force enumeration of every tag path on tiny inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.nn.crf import CRF, scheme_constraints

BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES_TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def _random_crf(num_tags: int, seed: int, constraints=None) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(num_tags, constraints).double()
    with torch.no_grad():  # larger than the initial scores, so transitions matter
        for p in crf.parameters():
            p.normal_(0.0, 1.0)
    return crf


def _path_score(crf: CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> float:
    """s(x, y) written out term by term, for one sentence (emissions (n, K))."""
    start, transitions, end = (s.detach() for s in crf.scores())
    score = start[path[0]] + emissions[0, path[0]]
    for t in range(1, len(path)):
        score = score + transitions[path[t - 1], path[t]] + emissions[t, path[t]]
    return float(score + end[path[-1]])


def _brute_force(crf: CRF, emissions: torch.Tensor, length: int) -> tuple[float, tuple, dict]:
    """(log Z, best path, score of every path) by enumerating all K^n paths."""
    scores = {path: _path_score(crf, emissions[:length], path)
              for path in itertools.product(range(crf.num_tags), repeat=length)}
    finite = [s for s in scores.values() if s > -math.inf]
    top = max(finite)
    log_z = top + math.log(sum(math.exp(s - top) for s in finite))
    best = max(scores, key=scores.get)
    return log_z, best, scores


def _batch(lengths: list[int], num_tags: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths)
    emissions = torch.randn(len(lengths), steps, num_tags, generator=generator,
                            dtype=torch.double) * 2
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    tags = torch.randint(num_tags, (len(lengths), steps), generator=generator)
    return emissions, mask, tags


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       num_tags=st.integers(1, 3), seed=st.integers(0, 1000))
def test_log_likelihood_and_viterbi_match_enumeration(lengths, num_tags, seed):
    crf = _random_crf(num_tags, seed)
    emissions, mask, tags = _batch(lengths, num_tags, seed)
    log_z = crf.log_partition(emissions, mask).detach()
    log_lik = crf.log_likelihood(emissions, tags, mask).detach()
    decoded = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        expected_z, best, scores = _brute_force(crf, emissions[b], n)
        assert float(log_z[b]) == pytest.approx(expected_z, rel=1e-9, abs=1e-9)
        gold = tuple(tags[b, :n].tolist())
        assert float(log_lik[b]) == pytest.approx(scores[gold] - expected_z, rel=1e-9, abs=1e-9)
        assert len(decoded[b]) == n
        assert scores[tuple(decoded[b])] == pytest.approx(scores[best], rel=1e-12)


def test_probabilities_of_all_paths_sum_to_one():
    crf = _random_crf(3, 7)
    emissions, mask, _ = _batch([3], 3, 7)
    total = 0.0
    for path in itertools.product(range(3), repeat=3):
        tags = torch.tensor([path])
        total += math.exp(float(crf.log_likelihood(emissions, tags, mask)[0].detach()))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_padding_does_not_change_scores():
    crf = _random_crf(3, 3)
    emissions, mask, tags = _batch([2, 4], 3, 3)
    alone = crf.log_likelihood(emissions[:1, :2], tags[:1, :2], mask[:1, :2])
    padded = crf.log_likelihood(emissions, tags, mask)
    assert float(padded[0].detach()) == pytest.approx(float(alone[0].detach()), abs=1e-12)
    assert crf.decode(emissions, mask)[0] == crf.decode(emissions[:1, :2], mask[:1, :2])[0]


@pytest.mark.parametrize("scheme, tags", [("bio", BIO_TAGS), ("bioes", BIOES_TAGS)])
def test_constraints_forbid_invalid_moves_and_keep_gradients_finite(scheme, tags):
    constraints = scheme_constraints(tags, scheme)
    crf = _random_crf(len(tags), 5, constraints)
    lengths = [1, 2, 3, 4]
    emissions, mask, _ = _batch(lengths, len(tags), 5)
    emissions.requires_grad_(True)
    log_z = crf.log_partition(emissions, mask)
    for b, n in enumerate(lengths):
        expected_z, best, scores = _brute_force(crf, emissions.detach()[b], n)
        assert float(log_z[b].detach()) == pytest.approx(expected_z, rel=1e-9)
        path = crf.decode(emissions.detach(), mask)[b]
        assert scores[tuple(path)] == pytest.approx(scores[best])
        names = [tags[i] for i in path]
        assert _valid(names, scheme), names
    # a valid gold path: finite likelihood and finite gradients everywhere
    gold = {"bio": ["B-PER", "I-PER", "O", "B-LOC"], "bioes": ["B-PER", "E-PER", "O", "S-LOC"]}
    gold_ids = torch.tensor([[tags.index(t) for t in gold[scheme]]] * len(lengths))
    log_lik = crf.log_likelihood(emissions, gold_ids, mask)
    assert torch.isfinite(log_lik[-1])
    (-log_lik[-1]).backward()
    for tensor in (emissions.grad, crf.start.grad, crf.transitions.grad, crf.end.grad):
        assert torch.isfinite(tensor).all()


def test_forbidden_gold_path_has_zero_probability():
    tags = BIO_TAGS
    crf = _random_crf(len(tags), 1, scheme_constraints(tags, "bio"))
    emissions, mask, _ = _batch([2], len(tags), 1)
    bad = torch.tensor([[tags.index("O"), tags.index("I-PER")]])
    assert float(crf.log_likelihood(emissions, bad, mask)[0].detach()) == -math.inf


def test_scheme_constraints_by_hand():
    c = scheme_constraints(BIO_TAGS, "bio")
    ids = {t: i for i, t in enumerate(BIO_TAGS)}
    assert not c.start[ids["I-PER"]] and c.start[ids["B-PER"]] and c.start[ids["O"]]
    assert not c.transitions[ids["O"], ids["I-LOC"]]
    assert not c.transitions[ids["B-PER"], ids["I-LOC"]]
    assert c.transitions[ids["B-PER"], ids["I-PER"]] and c.transitions[ids["I-PER"], ids["I-PER"]]
    assert c.transitions[ids["I-PER"], ids["B-PER"]] and c.end.all()
    e = scheme_constraints(BIOES_TAGS, "bioes")
    ids = {t: i for i, t in enumerate(BIOES_TAGS)}
    assert not e.end[ids["B-PER"]] and e.end[ids["E-PER"]] and e.end[ids["S-LOC"]]
    assert not e.transitions[ids["B-PER"], ids["O"]]
    assert e.transitions[ids["E-PER"], ids["S-PER"]]
    assert not e.transitions[ids["S-PER"], ids["E-PER"]]
    with pytest.raises(ValueError, match="not O or"):
        scheme_constraints(["O", "PER"], "bio")


def _valid(tags: list[str], scheme: str) -> bool:
    previous = "O"
    for tag in tags + (["O"] if scheme == "bioes" else []):
        p_prefix, _, p_type = previous.partition("-")
        prefix, _, kind = tag.partition("-")
        open_entity = p_prefix in ("B", "I")
        if prefix in ("I", "E") and not (open_entity and p_type == kind):
            return False
        if scheme == "bioes" and p_prefix in ("B", "I") and prefix not in ("I", "E"):
            return False
        previous = tag
    return True
