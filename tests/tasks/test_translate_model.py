"""Seq2Seq: stepwise decoding equals the teacher-forced forward pass, padding is invisible,
source reversal, weight tying, configuration errors."""

from __future__ import annotations

import pytest
import torch

from rnnlab.errors import RnnlabError
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.model import Seq2Seq, reverse_within_length

VARIANTS = [
    dict(attention="none"),
    dict(attention="none", reverse_source=True, cell="lstm", bridge=False),
    dict(attention="bahdanau"),
    dict(attention="bahdanau", cell="lstm", layers=2),
    dict(attention="general", input_feeding=True),
    dict(attention="dot", bidirectional=False, input_feeding=True, cell="lstm"),
    dict(attention="concat", local=True, local_window=2),
    dict(attention="general", tie_embeddings=True, reverse_source=True),
]


def _model(**overrides) -> Seq2Seq:
    torch.manual_seed(0)
    config = TranslateConfig(embedding=6, hidden=8, dropout=0.0, **overrides)
    return Seq2Seq(11, 13, config).eval()


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 4, 3, 0, 0]])
    lengths = torch.tensor([5, 3])
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 8, 0, 0]])
    return src, lengths, tgt_in


@pytest.mark.parametrize("overrides", VARIANTS)
def test_step_by_step_equals_teacher_forced_forward(overrides):
    model = _model(**overrides)
    src, lengths, tgt_in = _batch()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)  # (B, T, V)
        state = model.encode(src, lengths)
        for t in range(tgt_in.shape[1]):
            logits, state = model.step(tgt_in[:, t], state)
            assert torch.allclose(logits, full[:, t], atol=1e-5), t


@pytest.mark.parametrize("overrides", VARIANTS)
def test_padding_is_invisible(overrides):
    """A sentence scores the same alone as next to a longer one (padded source and target)."""
    model = _model(**overrides)
    src, lengths, tgt_in = _batch()
    with torch.no_grad():
        together = model(src, lengths, tgt_in)
        alone = model(src[1:, :3], lengths[1:], tgt_in[1:, :2])
    assert torch.allclose(together[1, :2], alone[0], atol=1e-5)


def test_attention_weights_cover_real_positions_only():
    model = _model(attention="bahdanau")
    src, lengths, _ = _batch()
    state = model.encode(src, lengths)
    _, state = model.step(torch.tensor([2, 2]), state)
    weights = state["weights"]
    assert torch.allclose(weights.sum(dim=1), torch.ones(2), atol=1e-6)
    assert weights[1, 3:].abs().sum().item() == 0.0


def test_reverse_within_length_by_hand():
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    assert reverse_within_length(x, torch.tensor([4, 2])).tolist() == [[4, 3, 2, 1], [6, 5, 0, 0]]
    features = torch.arange(8.0).view(1, 4, 2)
    reversed_ = reverse_within_length(features, torch.tensor([3]))
    assert reversed_[0, :, 0].tolist() == [4.0, 2.0, 0.0, 6.0]


def test_reversal_changes_what_the_encoder_reads():
    src, lengths, tgt_in = _batch()
    plain = _model(attention="none")
    reverse = _model(attention="none", reverse_source=True)
    with torch.no_grad():
        assert not torch.allclose(plain(src, lengths, tgt_in), reverse(src, lengths, tgt_in))


def test_tied_embeddings_share_one_tensor_and_loss_ignores_padding():
    model = _model(attention="general", tie_embeddings=True)
    assert model.output.weight is model.tgt_embedding.weight
    assert model.projection is not None  # hidden 8 -> embedding 6
    src, lengths, tgt_in = _batch()
    tgt_out = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]])
    loss, tokens = model.loss(src, lengths, tgt_in, tgt_out)
    assert tokens == 6
    logits = model(src, lengths, tgt_in)
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = [log_probs[b, t, tgt_out[b, t]] for b in range(2) for t in range(4)
              if tgt_out[b, t] != 0]
    assert loss.item() == pytest.approx(-torch.stack(picked).mean().item(), abs=1e-5)


def test_teacher_forcing_below_one_still_trains():
    model = _model(attention="bahdanau", teacher_forcing=0.5).train()
    src, lengths, tgt_in = _batch()
    loss, _ = model.loss(src, lengths, tgt_in, tgt_in)
    loss.backward()
    assert model.src_embedding.weight.grad is not None


def test_configuration_errors():
    with pytest.raises(ValueError, match="general or concat"):
        _model(attention="dot")  # bidirectional encoder: 2H outputs against an H query
    with pytest.raises(RnnlabError, match="need an attention"):
        TranslateConfig(attention="none", input_feeding=True)
    with pytest.raises(RnnlabError, match="Luong"):
        TranslateConfig(attention="bahdanau", input_feeding=True)
