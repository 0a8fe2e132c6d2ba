"""The recurrent layers under torch.autocast (bf16 training): the fused recurrences declare
float32 (`torch.amp.custom_fwd(cast_inputs=float32)`), so under autocast they compute exactly
what they compute on float32 inputs without it; every layer and path trains under autocast."""

from __future__ import annotations

import pytest
import torch

from rnnlab.nn import fused
from rnnlab.nn.factory import make_recurrent

T, B, H = 6, 3, 4
LENGTHS = torch.tensor([6, 4, 1])


MASK = (torch.arange(T)[:, None] < LENGTHS[None, :]).unsqueeze(-1).float()  # (T, B, 1)
GATES = {"lstm": 4, "lstm-peephole": 4, "gru": 3, "gru-minimal": 2, "rnn": 1}


def _call(kind: str, x_proj: torch.Tensor, p: dict[str, torch.Tensor]) -> tuple:
    if kind.startswith("lstm"):
        peepholes = (p["ci"], p["cf"], p["co"]) if kind == "lstm-peephole" else None
        return fused.lstm_sequence(x_proj, p["h0"], p["c0"], p["w"], p["b"], peepholes, MASK)
    if kind.startswith("gru"):
        variant = "minimal" if kind == "gru-minimal" else "full"
        return fused.gru_sequence(x_proj, p["h0"], p["w"], p["b"], variant, MASK)
    return fused.rnn_sequence(x_proj, p["h0"], p["w"], p["b"], "tanh", MASK)


def _forward_backward(kind: str, x_proj: torch.Tensor, parameters: dict[str, torch.Tensor],
                      autocast: bool) -> tuple:
    """Outputs, and the gradients of x_proj and of every parameter, from fresh leaves."""
    x = x_proj.detach().requires_grad_()
    p = {name: value.detach().clone().requires_grad_() for name, value in parameters.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        outputs = _call(kind, x, p)
    sum((i + 1) * o.sum() for i, o in enumerate(outputs)).backward()
    return outputs, x.grad, {name: value.grad for name, value in p.items()}


@pytest.mark.parametrize("kind", list(GATES))
def test_fused_recurrence_is_float32_under_autocast(kind):
    torch.manual_seed(0)
    size = GATES[kind] * H
    parameters = {"h0": torch.randn(B, H), "c0": torch.randn(B, H),
                  "w": 0.5 * torch.randn(size, H), "b": torch.randn(size),
                  **{name: torch.randn(H) for name in ("ci", "cf", "co")}}
    if kind != "lstm-peephole":
        parameters = {k: v for k, v in parameters.items() if k not in ("ci", "cf", "co")}
    if not kind.startswith("lstm"):
        del parameters["c0"]
    x_low = torch.randn(T, B, size).bfloat16()  # what autocast's input projection hands over
    outputs, x_grad, grads = _forward_backward(kind, x_low, parameters, autocast=True)
    # the oracle: the same (bf16-valued) inputs as float32, without autocast
    expected, x_grad_32, grads_32 = _forward_backward(kind, x_low.float(), parameters, False)
    for got, want in zip(outputs, expected, strict=True):
        assert got.dtype == torch.float32 and torch.equal(got, want)
    assert x_grad.dtype == torch.bfloat16  # the gradient meets its input's dtype
    assert torch.equal(x_grad, x_grad_32.bfloat16())
    for name, grad in grads.items():
        assert grad.dtype == torch.float32 and torch.equal(grad, grads_32[name]), name


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "gru", "gru-minimal", "rnn"])
@pytest.mark.parametrize("impl", ["fused", "loop"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_layers_train_under_bf16_autocast(cell, impl, lengths):
    """Every path (torch's kernel, the hand-written BPTT, the loop; with and without lengths)
    runs under autocast, close to its float32 numbers, with float32 weights and gradients."""
    torch.manual_seed(0)
    layer = make_recurrent(cell, 5, H, num_layers=2, bidirectional=True, impl=impl)
    x = torch.randn(B, T, 5)
    layer.batch_first = True
    expected, _ = layer(x, lengths=lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, state = layer(x, lengths=lengths)
    out.float().sum().backward()
    assert torch.allclose(out.float(), expected, atol=0.05)
    for name, parameter in layer.named_parameters():
        assert parameter.dtype == torch.float32 and parameter.grad.dtype == torch.float32, name
        assert torch.isfinite(parameter.grad).all(), name
