"""Position embeddings in the form an ONNX graph can hold: a lookup by position ids.

`LearnedPositions` and `SinusoidalPositions` slice a table at `offset .. offset + steps` and
check (in Python) that the slice exists; the exporter would turn that check into a fixed bound
on the graph's length axis, and the sinusoid table's on-demand growth into a fixed table. Within
`positions_form(model)` each is replaced by a `GraphPositions` that reads the same vectors by
gathering rows at `arange(steps) + offset` (learned) or by computing the sinusoids of those
positions with the table's own formula (sec. 3.5 of Vaswani et al.: any position, no table), so
one graph serves every length and every offset a key/value cache reaches. A learned position
past the last one the model learned is an out-of-range gather: onnxruntime refuses it, as
PyTorch's check does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.positions import LearnedPositions, SinusoidalPositions


def sinusoids(positions: Tensor, dim: int) -> Tensor:
    """PE of the positions (T,) (any values) -> (T, dim), computed as `sinusoid_table`."""
    pos = positions.to(torch.float32)[:, None]  # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)  # (ceil(d/2),)
    angle = pos / torch.pow(10000.0, two_i / dim)  # (T, ceil(d/2))
    sin, cos = torch.sin(angle), torch.cos(angle[:, : dim // 2])
    if dim % 2:  # an odd width ends with one more sine
        cos = torch.cat([cos, torch.zeros_like(sin[:, :1])], dim=1)
    return torch.stack([sin, cos], dim=2).reshape(positions.shape[0], -1)[:, :dim]  # (T, d)


class GraphPositions(nn.Module):
    """`positions(steps, offset)` of the wrapped module as a gather (or formula) over ids."""

    def __init__(self, inner: LearnedPositions | SinusoidalPositions) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, steps: int, offset: int = 0) -> Tensor:
        inner = self.inner
        learned = isinstance(inner, LearnedPositions)
        device = inner.weight.device if learned else inner.table.device
        ids = torch.arange(steps, device=device) + offset  # (T,)
        if learned:
            return F.embedding(ids, inner.weight)  # (T, d)
        return sinusoids(ids, inner.dim)  # (T, d)


@contextmanager
def positions_form(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every position module of `model` is its `GraphPositions`."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LearnedPositions | SinusoidalPositions):
                swapped.append((parent, name, child))
                setattr(parent, name, GraphPositions(child))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
