"""Mixed-precision training: `--precision fp32 | bf16 | fp16` as torch's autocast.

The weights, the optimizer state and the checkpoints stay float32 whatever the precision; only
the forward pass of a training step runs under `torch.autocast`, which computes matrix products
in the lower precision and keeps reductions (losses, softmax) in float32. The recurrent layers
declare their own behaviour under it (`nn/fused.py`: the recurrence itself stays float32).
Evaluation runs in float32, so the dev metrics that pick the kept checkpoint are the numbers
`rnnlab eval` gives for it later.

fp16 has too few exponent bits for small gradients, so it comes with a gradient scaler (loss
scaling, Micikevicius et al. 2018); torch's scaler and fp16 autocast are meant for CUDA, so fp16
is refused on the CPU, where bf16 (float32's exponent range, no scaler needed) is the choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from rnnlab.errors import RnnlabError

PRECISIONS = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device_type: str) -> None:
    """Refuse a precision the device cannot train in, before any data is read."""
    if precision not in PRECISIONS:
        raise RnnlabError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device_type != "cuda":
        raise RnnlabError(f"--precision fp16 needs a CUDA device (its gradient scaler is "
                          f"CUDA-only) and this run is on {device_type}: use --precision bf16")


class Precision:
    """The autocast context, loss scaling and unscaling for one run on one device type."""

    def __init__(self, precision: str, device_type: str) -> None:
        check_precision(precision, device_type)
        self.precision, self.device_type = precision, device_type
        self.dtype = AUTOCAST_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass of a training step (a no-op in fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true size before clipping and reporting the norm."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer step; with fp16, skipped when the gradients overflowed (the scaler then
        lowers its scale), as torch's GradScaler does."""
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A run resumed with another precision starts a fresh scale (the state is then empty
        or belongs to no scaler)."""
        if self.scaler and state:
            self.scaler.load_state_dict(state)
