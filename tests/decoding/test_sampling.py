"""Sampling over `step`: filters by hand-checkable cases, seeds, and state carried."""

from __future__ import annotations

import math

import torch

from rnnlab.decoding.sampling import filter_logits, sample


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    kept = filter_logits(logits, top_k=2)
    assert torch.isinf(kept[0, [0, 3]]).all() and torch.isfinite(kept[0, [1, 2]]).all()


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = filter_logits(probs.log(), top_p=0.75)
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()
    kept = filter_logits(probs.log(), top_p=0.8)  # 0.5 + 0.3 reaches 0.8 exactly
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()


def test_temperature_scales_logits():
    logits = torch.tensor([[2.0, 4.0]])
    assert torch.allclose(filter_logits(logits, temperature=2.0), torch.tensor([[1.0, 2.0]]))


class CountingModel:
    """Predicts (last token + 1) mod V with certainty; counts how often it is stepped."""

    vocab = 5

    def __init__(self):
        self.calls = 0

    def step(self, tokens, state):
        self.calls += 1
        logits = torch.full((tokens.shape[0], self.vocab), -math.inf)
        logits[torch.arange(tokens.shape[0]), (tokens + 1) % self.vocab] = 0.0
        return logits, (state or 0) + 1


def test_greedy_follows_the_model_and_steps_once_per_token():
    model = CountingModel()
    out = [int(t) for t in sample(model.step, [0, 1], 6, greedy=True)]
    assert out == [2, 3, 4, 0, 1, 2]
    assert model.calls == 2 + 5  # the prime once, then one step per new token but the last


def test_seeded_sampling_is_reproducible_and_banned_ids_never_appear():
    def step(tokens, state):
        return torch.zeros(tokens.shape[0], 10), state

    def draw(seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.stack(list(sample(step, [1], 200, generator=gen, banned=(0, 2),
                                       num_samples=3)))

    a, b = draw(3), draw(3)
    assert torch.equal(a, b)
    assert not torch.isin(a, torch.tensor([0, 2])).any()
    assert a.shape == (200, 3)


def test_draw_follows_the_distribution_and_never_draws_zero_probability():
    from rnnlab.decoding.sampling import draw

    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20000, 1)  # (N, V)
    generator = torch.Generator().manual_seed(0)
    tokens = draw(probs, generator)
    counts = torch.bincount(tokens, minlength=6).float() / len(tokens)
    assert counts[[0, 2, 5]].sum() == 0
    # 20000 draws: the standard error of a share near 0.5 is about 0.0035
    assert torch.allclose(counts, probs[0], atol=0.02)


def test_draw_handles_unnormalised_rows_per_row():
    from rnnlab.decoding.sampling import draw

    probs = torch.tensor([[0.0, 2.0], [3.0, 0.0]])  # rows need not sum to 1
    tokens = draw(probs, torch.Generator().manual_seed(1))
    assert tokens.tolist() == [1, 0]
