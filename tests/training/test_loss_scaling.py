"""fp16's loss scaling in `Precision`, checked on the CPU (the fp16 flag itself is CUDA-only;
torch's GradScaler also runs on the CPU, so the bookkeeping is tested here with it): the
gradients are unscaled before clipping (the update equals the unscaled one), an overflowing
step is skipped and the scale lowered, and the scale is saved and restored."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.training.precision import Precision


def scaled_precision() -> Precision:
    precision = Precision("fp32", "cpu")  # fp16 is refused on the CPU: add the scaler by hand
    precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    return precision


def one_step(precision: Precision, scale_input: float = 1.0) -> tuple[nn.Linear, float]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.randn(4, 3) * scale_input).pow(2).mean()
    precision.backward(loss)
    precision.unscale(optimizer)
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9))
    precision.step(optimizer)
    return model, norm


def test_scaled_step_equals_the_plain_step():
    plain, plain_norm = one_step(Precision("fp32", "cpu"))
    scaled, scaled_norm = one_step(scaled_precision())
    assert scaled_norm == plain_norm  # unscaled before the norm is taken and reported
    for a, b in zip(plain.parameters(), scaled.parameters(), strict=True):
        assert torch.equal(a, b)  # scaling by a power of two and back is exact


def test_an_overflow_skips_the_step_and_lowers_the_scale():
    precision = scaled_precision()
    torch.manual_seed(0)
    before = nn.Linear(3, 2).weight.detach().clone()
    model, norm = one_step(precision, scale_input=float("inf"))
    assert torch.equal(model.weight, before)  # not updated
    assert precision.state_dict()["scale"] == 2.0**9
    again = scaled_precision()
    again.load_state_dict(precision.state_dict())
    assert again.scaler.get_scale() == 2.0**9


def test_no_scaler_state_for_fp32_and_bf16():
    assert Precision("bf16", "cpu").state_dict() == {}
    plain = Precision("fp32", "cpu")
    plain.load_state_dict({"scale": 8.0})  # a resumed fp16 run trained on in fp32: ignored
    assert plain.state_dict() == {}
