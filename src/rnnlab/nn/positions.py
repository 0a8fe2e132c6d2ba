"""Where a token is: attention alone is blind to order, so positions are added to embeddings.

- `SinusoidalPositions` (Vaswani et al. 2017, sec. 3.5): fixed, defined for every position,
      PE(pos, 2i) = sin(pos / 10000^(2i / d)),   PE(pos, 2i + 1) = cos(pos / 10000^(2i / d));
- `LearnedPositions` (Gehring et al. 2017; GPT): one trained vector per position up to
  `max_len`, no further (a GPT's context length).

Both are called as `positions(steps, offset=0) -> (steps, d)`: the vectors of positions
offset .. offset + steps - 1 (an incremental decoder passes the number of tokens already read).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoid_table(steps: int, dim: int, offset: int = 0) -> Tensor:
    """The (steps, dim) table of sec. 3.5 for positions offset .. offset + steps - 1."""
    pos = torch.arange(offset, offset + steps, dtype=torch.float32)[:, None]  # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float32)  # (ceil(d/2),)
    angle = pos / torch.pow(10000.0, two_i / dim)  # (T, ceil(d/2))
    table = torch.zeros(steps, dim)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids; no parameters. The table is kept (not saved) and grown on demand."""

    def __init__(self, dim: int, max_len: int = 1024) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("table", sinusoid_table(max_len, dim), persistent=False)

    def forward(self, steps: int, offset: int = 0) -> Tensor:
        if offset + steps > self.table.shape[0]:
            size = 2 ** math.ceil(math.log2(offset + steps))
            self.table = sinusoid_table(size, self.dim).to(self.table.device)
        return self.table[offset : offset + steps]  # (T, d)


class LearnedPositions(nn.Module):
    """A trained embedding per position, N(0, 0.02) at the start (GPT-2's initialisation)."""

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, steps: int, offset: int = 0) -> Tensor:
        if offset + steps > self.max_len:
            raise ValueError(f"position {offset + steps - 1} is beyond the {self.max_len} "
                             "learned positions (the model's context length)")
        return self.weight[offset : offset + steps]  # (T, d)


POSITIONS = ("sinusoidal", "learned")


def make_positions(kind: str, dim: int, max_len: int) -> nn.Module:
    """`kind` is one of POSITIONS."""
    if kind == "sinusoidal":
        return SinusoidalPositions(dim, max_len)
    if kind == "learned":
        return LearnedPositions(dim, max_len)
    raise ValueError(f"unknown positions {kind!r}; choose one of {', '.join(POSITIONS)}")
