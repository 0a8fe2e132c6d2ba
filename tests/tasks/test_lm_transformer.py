"""The GPT-style language model: its cache-backed `step` against the full forward pass, the
nanoGPT crop, random training windows, and the parameters of nanoGPT's Tiny Shakespeare model."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from rnnlab.data.batching import random_windows
from rnnlab.decoding.beam import beam_search
from rnnlab.tasks.lm.config import LMConfig
from rnnlab.tasks.lm.predict import token_log_probs
from rnnlab.tasks.lm.presets import preset_configs
from rnnlab.tasks.lm.transformer import TransformerLM


def _model(positions: str = "learned", norm_first: bool = True, block: int = 8) -> TransformerLM:
    torch.manual_seed(0)
    config = LMConfig(model="transformer", hidden=16, layers=2, heads=2, block_size=block,
                      positions=positions, norm_first=norm_first, dropout=0.0,
                      dropout_output=0.0, tie_weights=True)
    return TransformerLM(11, config).eval()


@pytest.mark.parametrize("positions,norm_first", [("learned", True), ("sinusoidal", False)])
def test_cached_steps_equal_the_full_forward(positions, norm_first):
    model = _model(positions, norm_first)
    tokens = torch.randint(0, 11, (8, 3))  # (T, B): a full context
    full, state = model(tokens)
    assert state is None and full.shape == (8, 3, 11)
    state, steps = None, []
    for t in range(8):
        logits, state = model.step(tokens[t], state)
        steps.append(logits)
    assert torch.allclose(torch.stack(steps), full, atol=1e-5)
    assert state["layers"][0]["k"].shape == (3, 2, 8, 8)


def test_past_the_context_the_window_is_cropped_as_nanogpt_does():
    model = _model(block=4)
    tokens = torch.randint(0, 11, (7, 2))
    state = None
    for t in range(7):
        logits, state = model.step(tokens[t], state)
    # nanoGPT: idx_cond = idx[:, -block_size:]; logits of its last position
    expected, _ = model(tokens[-4:])
    assert torch.allclose(logits, expected[-1], atol=1e-5)
    assert state["tokens"].shape == (2, 4)
    with pytest.raises(ValueError, match="block-size"):
        model(tokens)


def test_scoring_a_text_longer_than_the_context_uses_the_cropped_window():
    model = _model(block=4)
    ids = torch.randint(0, 11, (6,)).tolist()
    scores = token_log_probs(model, 0, ids)
    inputs = [0, *ids[:-1]]
    for t in range(6):
        window = torch.tensor(inputs[max(0, t - 3) : t + 1]).unsqueeze(1)  # the last 4 tokens
        with torch.no_grad():
            logits, _ = model(window)
        expected = F.log_softmax(logits[-1, 0], dim=-1)[ids[t]]
        assert scores[t] == pytest.approx(float(expected), abs=1e-5)


def test_beam_search_runs_over_the_cache():
    model = _model()
    _, state = model.step(torch.tensor([1, 2]))  # two sentences, one token read each
    hypotheses = beam_search(model.step, state, 3, 4, torch.tensor([5, 5]), beam=3)
    assert len(hypotheses) == 2


def test_random_windows_are_the_stream_shifted_by_one():
    ids = torch.arange(100)
    batches = random_windows(ids, 3, 5, 4, torch.Generator().manual_seed(1))
    assert len(batches) == 4
    for x, y in batches:
        assert x.shape == y.shape == (5, 3)
        assert torch.equal(y, x + 1)  # ids are their positions: y is x one step later
        assert torch.equal(x[1:], x[:-1] + 1)


def test_nanogpt_preset_has_nanogpts_parameter_count():
    config, train = preset_configs("shakespeare-gpt")
    model = TransformerLM(65, config)  # nanoGPT's 65 characters
    # nanoGPT counts without position embeddings: 0.80M for 4 x 128, block 64, no biases
    counted = model.num_parameters() - model.positions.weight.numel()
    assert counted == 4 * (12 * 128 * 128 + 2 * 128) + 128 + 65 * 128
    assert (train.lr, train.min_lr, train.warmup, train.beta2, train.max_steps) == (
        1e-3, 1e-4, 100, 0.99, 2000)


def test_batched_windows_score_the_stream_as_one_stream_does():
    from rnnlab.data.batching import batchify
    from rnnlab.tasks.lm.predict import score_streams, score_windows

    model = _model(block=8)
    ids = torch.randint(0, 11, (45,))
    one = score_streams(model, batchify(ids, 1), 8)
    batched = score_windows(model, ids, 8, batch_size=3)
    assert batched.tokens == one.tokens == 44
    assert batched.nll == pytest.approx(one.nll, rel=1e-5)
