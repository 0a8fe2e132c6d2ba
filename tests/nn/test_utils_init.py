"""Truncated-BPTT and clipping helpers, and the initialisation helpers."""

from __future__ import annotations

import torch

from rnnlab.nn import (
    LSTM,
    LSTMCell,
    clip_grad_norm,
    detach_state,
    orthogonal_recurrent_,
    set_forget_bias_,
)


def test_detach_state_keeps_values_and_cuts_the_graph():
    h = torch.randn(2, 3, requires_grad=True) * 2
    c = torch.randn(2, 3, requires_grad=True) * 2
    dh, dc = detach_state((h, c))
    assert torch.equal(dh, h) and torch.equal(dc, c)
    assert not dh.requires_grad and not dc.requires_grad
    assert detach_state(None) is None
    assert not detach_state(h).requires_grad


def test_clip_grad_norm_returns_the_norm_before_clipping():
    a = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1))
    a.grad = torch.tensor([3.0, 0.0])
    b.grad = torch.tensor([4.0])
    assert clip_grad_norm([a, b], 1.0) == 5.0
    total = torch.sqrt(a.grad.pow(2).sum() + b.grad.pow(2).sum())
    torch.testing.assert_close(total, torch.tensor(1.0))
    a.grad = torch.tensor([3.0, 0.0])
    b.grad = torch.tensor([4.0])
    assert clip_grad_norm([a, b], 0.0) == 5.0  # measure only
    assert a.grad[0] == 3.0


def test_orthogonal_recurrent_blocks():
    layer = LSTM(3, 5, num_layers=2, bidirectional=True)
    orthogonal_recurrent_(layer)
    for name, weight in layer.named_parameters():
        if name.startswith("weight_hh"):
            for block in weight.detach().split(5, dim=0):  # one (H, H) block per gate
                torch.testing.assert_close(block @ block.T, torch.eye(5), atol=1e-5, rtol=0)


def test_forget_bias():
    layer = LSTM(3, 4, forget_bias=1.0)
    total = layer.bias_ih_l0 + layer.bias_hh_l0
    torch.testing.assert_close(total[4:8], torch.ones(4))
    set_forget_bias_(layer, 2.0)
    torch.testing.assert_close((layer.bias_ih_l0 + layer.bias_hh_l0)[4:8], torch.full((4,), 2.0))
    cell = LSTMCell(3, 4, forget_bias=1.0)
    plain = LSTMCell(3, 4)
    torch.manual_seed(0)
    cell.reset_parameters()
    torch.manual_seed(0)
    plain.reset_parameters()
    torch.testing.assert_close((cell.bias_ih - plain.bias_ih)[4:8], torch.full((4,), 0.5))
