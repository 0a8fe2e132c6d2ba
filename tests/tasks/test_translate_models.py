"""The non-recurrent translation models (ConvS2S, Transformer) behind the shared interface:
stepwise decoding equals the teacher-forced pass, padding is invisible, and a wide beam search
through `step` finds what exhaustive search over the full pass finds."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnlab.decoding.beam import length_penalty
from rnnlab.tasks.translate.build import build_model
from rnnlab.tasks.translate.config import TranslateConfig

KINDS = [
    dict(model="conv", layers=2, kernel=3),
    dict(model="conv", layers=1, kernel=5, tie_embeddings=True),
    dict(model="transformer", layers=2, heads=2),
    dict(model="transformer", layers=1, heads=4, norm_first=True, positions="learned",
         tie_embeddings=True, activation="gelu"),
]
BOS, EOS = 2, 3


def _model(vocab: int = 13, **overrides):
    torch.manual_seed(0)
    config = TranslateConfig(embedding=8, hidden=8, dropout=0.0, **overrides)
    return build_model(11, vocab, config).eval()


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 4, 3, 0, 0]])
    lengths = torch.tensor([5, 3])
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 8, 0, 0]])
    return src, lengths, tgt_in


@pytest.mark.parametrize("overrides", KINDS)
def test_step_by_step_equals_teacher_forced_forward(overrides):
    model = _model(**overrides)
    src, lengths, tgt_in = _batch()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)  # (B, T, V)
        state = model.encode(src, lengths)
        for t in range(tgt_in.shape[1]):
            logits, state = model.step(tgt_in[:, t], state)
            assert torch.allclose(logits, full[:, t], atol=1e-5), t
            attention = model.cross_attention(src, lengths, tgt_in[:, : t + 1])
            assert torch.allclose(state["weights"], attention[-1, :, :, t].mean(1), atol=1e-6)


@pytest.mark.parametrize("overrides", KINDS)
def test_padding_is_invisible(overrides):
    model = _model(**overrides)
    src, lengths, tgt_in = _batch()
    with torch.no_grad():
        together = model(src, lengths, tgt_in)
        alone = model(src[1:, :3], lengths[1:], tgt_in[1:, :2])
    assert torch.allclose(together[1, :2], alone[0], atol=1e-5)


@pytest.mark.parametrize("overrides", KINDS)
def test_loss_is_cross_entropy_of_real_tokens(overrides):
    model = _model(**overrides)
    src, lengths, tgt_in = _batch()
    tgt_out = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]])
    loss, tokens = model.loss(src, lengths, tgt_in, tgt_out, label_smoothing=0.0)
    log_probs = torch.log_softmax(model(src, lengths, tgt_in), dim=-1)
    picked = [log_probs[b, t, tgt_out[b, t]] for b in range(2) for t in range(4)
              if tgt_out[b, t] != 0]
    assert tokens == 6
    assert loss.item() == pytest.approx(-torch.stack(picked).mean().item(), abs=1e-5)


def _exhaustive(model, src, lengths, max_len: int, vocab: int, alpha: float):
    """(tokens, score) of the best output of at most max_len tokens ending in <eos>, each
    scored by one teacher-forced pass (not by `step`)."""
    best = None
    others = [t for t in range(vocab) if t != EOS]
    for n in range(max_len):
        for body in itertools.product(others, repeat=n):
            tgt_in = torch.tensor([[BOS, *body]])
            out = torch.tensor([[*body, EOS]])
            with torch.no_grad():
                log_probs = torch.log_softmax(model(src, lengths, tgt_in), dim=-1)
            score = float(log_probs.gather(2, out[..., None]).sum())
            normalised = score / length_penalty(n + 1, alpha)
            if best is None or normalised > best[0]:
                best = (normalised, list(body), score)
    return best[1], best[2]


@pytest.mark.parametrize("overrides", KINDS)
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_through_step_equals_exhaustive_search(overrides, alpha):
    vocab, max_len = 5, 3  # 1 + 4 + 16 outputs: a beam of 32 never drops one
    model = _model(vocab, **overrides)
    src, lengths, _ = _batch()
    found = model.translate(src, lengths, BOS, EOS, beam=32, alpha=alpha, max_len_ratio=0.0,
                            max_len_extra=max_len)
    for b, hypothesis in enumerate(found):
        n = int(lengths[b])
        tokens, score = _exhaustive(model, src[b:b + 1, :n], lengths[b:b + 1], max_len, vocab,
                                    alpha)
        assert hypothesis.tokens == tokens
        assert hypothesis.score == pytest.approx(score, abs=1e-4)
