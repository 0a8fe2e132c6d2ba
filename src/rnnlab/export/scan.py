"""Recurrent layers in the form an ONNX graph can hold: one `scan` over time per direction.

An rnnlab layer runs its time loop in Python (`impl="loop"`) or in a fused kernel; neither
becomes a graph that accepts any sentence length: tracing unrolls a Python loop at the example's
length, and the fused kernels of the variants torch lacks (peephole LSTM, minimal GRU) are
hand-written autograd functions. `ScanRecurrent` wraps a layer (its own parameters, not copies)
and runs each direction of each layer as one `torch._higher_order_ops.scan` of the cell's
textbook `recurrence` (`nn/cells.py`), which torch's dynamo ONNX exporter writes as one ONNX
`Scan` node: the same equations for every cell, any length, any batch.

Padding is handled as in `nn/recurrent.py`: past a sentence's end the state is carried and the
output is zero, and the reverse direction reads each sentence from its own last word.

Shapes: T time, B batch, I input, H hidden, G gates, L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch._higher_order_ops.scan import scan  # a private module in torch 2.13; see export.md
from torch.nn import functional as F

from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.recurrent import GRU, LSTM, RNN, _Recurrent


class ScanRecurrent(nn.Module):
    """`layer` with the call signature of an rnnlab layer, computed with `scan` (see module doc).

    Attributes it does not have itself (the weights by torch's names, `hidden_size`, ...) are the
    wrapped layer's, so model code that reads `decoder.weight_ih_l0` works unchanged.
    """

    def __init__(self, layer: _Recurrent) -> None:
        super().__init__()
        self.inner = layer

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)

    # -- the cell's equations ------------------------------------------------------------------

    def _cell(self, suffix: str):  # noqa: ANN202 - (x_proj, state tuple) -> state tuple
        layer = self.inner
        weight_hh = getattr(layer, "weight_hh" + suffix)
        bias_hh = getattr(layer, "bias_hh" + suffix, None)
        if isinstance(layer, LSTM):
            peepholes = None
            if layer.peephole:
                peepholes = tuple(getattr(layer, name + suffix)
                                  for name in ("weight_ci", "weight_cf", "weight_co"))
            return lambda x_t, s: LSTMCell.recurrence(x_t, s, weight_hh, bias_hh, peepholes)
        if isinstance(layer, GRU):
            return lambda x_t, s: (GRUCell.recurrence(x_t, s[0], weight_hh, bias_hh,
                                                      layer.variant),)
        if isinstance(layer, RNN):
            return lambda x_t, s: (RNNCell.recurrence(x_t, s[0], weight_hh, bias_hh,
                                                      layer.nonlinearity),)
        raise TypeError(f"no scan form for {type(layer).__name__}")

    def _project(self, x: Tensor, suffix: str) -> Tensor:
        """W_ih x + b_ih for all steps at once (T, B, G*H) or one step (B, G*H)."""
        layer = self.inner
        return F.linear(x, getattr(layer, "weight_ih" + suffix),
                        getattr(layer, "bias_ih" + suffix, None))

    def _start(self, state: Any, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        layer = self.inner
        if state is None:
            shape = (layer.num_layers * layer.num_directions, batch, layer.hidden_size)
            return tuple(like.new_zeros(shape) for _ in range(layer.num_states))
        return (state,) if isinstance(state, Tensor) else tuple(state)

    def _pack(self, parts: tuple[Tensor, ...]) -> Any:
        return parts[0] if self.inner.num_states == 1 else (parts[0], parts[1])

    # -- a whole sequence ------------------------------------------------------------------------

    def forward(self, x: Tensor, state: Any = None,
                lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        """x (T, B, I) or batch-first (B, T, I), lengths (B,) -> out (.., D*H), final state."""
        layer = self.inner
        if layer.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        steps, batch = x.shape[0], x.shape[1]
        time = torch.arange(steps, device=x.device)[:, None]  # (T, 1)
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device)[None, :]  # (1, B)
        inside = time < lengths  # (T, B)
        mask = inside.unsqueeze(-1).to(x.dtype)  # (T, B, 1)
        reverse_index = torch.where(inside, lengths - 1 - time, time)  # (T, B)
        starts = self._start(state, batch, x)
        finals: list[list[Tensor]] = [[] for _ in starts]
        layer_input = x
        for number in range(layer.num_layers):
            outputs = []
            for direction in range(layer.num_directions):
                suffix = f"_l{number}" + ("_reverse" if direction else "")
                index = number * layer.num_directions + direction
                inputs = layer_input
                if direction:
                    inputs = _reverse_time(inputs, reverse_index)
                x_proj = self._project(inputs, suffix)  # (T, B, G*H)
                start = tuple(s[index].clone() for s in starts)  # scan's carry may not alias
                out, final = _masked_scan(self._cell(suffix), x_proj, mask, start)
                if direction:
                    out = _reverse_time(out, reverse_index)
                outputs.append(out)
                for i, part in enumerate(final):
                    finals[i].append(part)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        out = layer_input.transpose(0, 1) if layer.batch_first else layer_input
        return out, self._pack(tuple(torch.stack(f) for f in finals))

    # -- one step ----------------------------------------------------------------------------------

    def step(self, x: Tensor | None, state: Any = None, *,
             x_proj: Tensor | None = None) -> tuple[Tensor, Any]:
        """One step of a unidirectional layer, x (B, I) or x_proj (B, G*H) -> h (B, H), state."""
        layer = self.inner
        like = x_proj if x_proj is not None else x
        starts = self._start(state, like.shape[0], like)
        finals: list[tuple[Tensor, ...]] = []
        layer_input = x
        for number in range(layer.num_layers):
            suffix = f"_l{number}"
            if number > 0 or x_proj is None:
                x_proj = self._project(layer_input, suffix)  # (B, G*H)
            new = self._cell(suffix)(x_proj, tuple(s[number] for s in starts))
            finals.append(new)
            layer_input = new[0]
        return layer_input, self._pack(tuple(torch.stack(p) for p in zip(*finals, strict=True)))


def _masked_scan(cell, x_proj: Tensor, mask: Tensor,  # noqa: ANN001
                 start: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Step `cell` over x_proj (T, B, G*H); where mask (T, B, 1) is 0 the state is carried and
    the output is 0. -> outputs (T, B, H), final state."""

    def step(state: tuple[Tensor, ...], inputs: tuple[Tensor, Tensor]):  # noqa: ANN202
        x_t, m = inputs  # (B, G*H), (B, 1)
        new = cell(x_t, state)
        kept = tuple(m * n + (1 - m) * s for n, s in zip(new, state, strict=True))
        return kept, m * new[0]

    if torch.compiler.is_exporting():
        final, outputs = scan(step, start, (x_proj, mask))
        return outputs, tuple(final)
    # Eager (checks, the export's parity run): the same `step` in a Python loop, because an
    # eager `scan` compiles its body on every call (seconds each).
    state, steps = start, []
    for inputs in zip(x_proj.unbind(0), mask.unbind(0), strict=True):
        state, out = step(state, inputs)
        steps.append(out)
    return torch.stack(steps), state


def _reverse_time(x: Tensor, reverse_index: Tensor) -> Tensor:
    """Reverse each sequence of x (T, B, F) within its own length; padding stays in place."""
    return x.gather(0, reverse_index.unsqueeze(-1).expand_as(x))


@contextmanager
def scan_form(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every rnnlab recurrent layer of `model` is its `ScanRecurrent`."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _Recurrent):
                swapped.append((parent, name, child))
                setattr(parent, name, ScanRecurrent(child))
    try:
        yield model
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
