"""Variable-length batches through torch's padded kernel, with the packed kernel's numbers.

torch's CPU kernel runs a padded batch through oneDNN, near the machine's matrix-product rate, but
a `PackedSequence` through a slower native loop: about 2.5x the time per real token. This module
computes exactly what the packed kernel computes while spending its time in the padded one:

* the batch is sorted by length and cut into a few groups of similar lengths (the cut minimises a
  cost model: a fixed cost per kernel call plus steps x rows), each run padded to its own longest
  sequence, so little arithmetic is spent on padding;
* the reverse direction reads each sequence reversed *within its own length*, so its padding
  also comes after its real steps; each layer and direction is then one call of the kernel;
* padding after a sequence's end changes nothing before it, forward or backward. The outputs there
  are zeroed, `h_n` is read from the output at each sequence's own last step, and LSTM's `c_n`,
  which the kernel does not output per step, is carried unchanged through the padding: an extra
  input feature, 1 on padding and 0 on real steps, drives the forget gate to exactly 1 and the
  input gate to exactly 0 there (its weights are +-PAD_DRIVE; sigma saturates to 1.0 / 0.0 in
  float32 and float64, so c_t = 1*c_{t-1} + 0*g bit for bit, and sigma' = 0 there, so no gradient
  leaks through the padding either);
* a group whose sequences all have the same length is simply one call over all layers and both
  directions.

Shapes (legend in cells.py): x (T, B, I), lengths (B,), states each (L*D, B, H).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.nn import functional as F

if TYPE_CHECKING:
    from rnnlab.nn.recurrent import _Recurrent

# Added to the forget gate's (subtracted from the input gate's) pre-activation on padding steps.
PAD_DRIVE = 1e6
# Cost model for cutting a length-sorted batch into groups: a kernel call costs
# CALL_COST + steps * (STEP_COST + rows), in units of one row-step. Chosen by timing config (d)
# of benchmarks/recurrent_speed.py (B64 T50 bi 1x256, one thread) with CALL_COST 1e9 (one
# group), 250, 100, 40, 10, 3, 0 and STEP_COST 1, 4, 12: fewer, larger calls lost (1.25x
# torch's packed LSTM with one group, 1.6x with two), 4-5 groups won (1.75-1.9x). A call's
# fixed cost does not shrink with the layer, a row-step's does: `call_cost` scales CALL_COST by
# REFERENCE_WORK / (H * (I + H)), the per-row work of that layer relative to (d)'s.
CALL_COST = 10.0
STEP_COST = 1.0
REFERENCE_WORK = 256 * (256 + 256)


def applies(layer: _Recurrent, x: Tensor) -> bool:
    """Whether `lengths_kernel="auto"` sends a batch with lengths here.

    Measured (benchmarks/results/recurrent_speed*.md, one thread): in training (fwd+bwd) the
    padded path beat torch's packed LSTM 1.7-2.3x on every batch tried, GRU and RNN only at
    hidden size 256 (1.1-1.4x; 0.94-0.99x at 100-150, where torch's GRU/RNN kernel is not oneDNN
    padded or packed); under no_grad it was 0.78-1.01x for LSTM, so inference stays packed.
    Padded is oneDNN's only for float32 on the CPU.
    """
    return x.device.type == "cpu" and x.dtype == torch.float32 \
        and torch.backends.mkldnn.is_available() and torch.is_grad_enabled() \
        and layer.hidden_size >= layer.padded_lengths_min_hidden


def call_cost(input_size: int, hidden_size: int) -> float:
    """CALL_COST for a layer of this size, in its own row-steps."""
    return CALL_COST * max(1.0, REFERENCE_WORK / (hidden_size * (input_size + hidden_size)))


def group_bounds(sorted_lengths: list[int], call: float | None = None) -> list[int]:
    """Cut points [0, ..., B] of a descending length list into groups of least modelled cost.

    Dynamic programme over the places where the length changes (a cut inside a run of equal
    lengths never helps): a group [i, j) costs `call` (default CALL_COST) +
    sorted_lengths[i] * (STEP_COST + j - i), its first sequence being its longest. O(P^2) for P
    distinct lengths.
    """
    call = CALL_COST if call is None else call
    n = len(sorted_lengths)
    points = [0] + [i for i in range(1, n) if sorted_lengths[i] != sorted_lengths[i - 1]] + [n]
    best = [0.0] + [float("inf")] * (len(points) - 1)  # least cost of the first points[q]
    cut = [0] * len(points)  # where the last group of that best split starts (index into points)
    for q in range(1, len(points)):
        j = points[q]
        for p in range(q):
            i = points[p]
            cost = best[p] + call + sorted_lengths[i] * (STEP_COST + j - i)
            if cost < best[q]:
                best[q], cut[q] = cost, p
    bounds, q = [n], len(points) - 1
    while q > 0:
        q = cut[q]
        bounds.append(points[q])
    return bounds[::-1]


def run(layer: _Recurrent, x: Tensor, states: tuple[Tensor, ...],
        lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The layer over a padded batch with lengths: out (T, B, D*H), final states (L*D, B, H)."""
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order].tolist()
    bounds = group_bounds(sorted_lengths, call_cost(layer.input_size, layer.hidden_size))
    steps = x.shape[0]
    padded = any(sorted_lengths[start] != sorted_lengths[stop - 1]
                 for start, stop in zip(bounds[:-1], bounds[1:], strict=True))
    weights = {suffix: _driven(layer, layer._weights(suffix))  # shared by every padded group
               for number in range(layer.num_layers) for suffix in layer._suffixes(number)
               } if padded else {}
    # One reorder of the batch, then the groups as its consecutive parts: their gradients meet
    # in one concatenation, not in a batch-sized zero tensor per group.
    order_on = order.to(x.device)
    sizes = [stop - start for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    parts_x = x.index_select(1, order_on).split(sizes, dim=1)  # (T, B_g, I) each
    parts_states = list(zip(*(s.index_select(1, order_on).split(sizes, dim=1) for s in states),
                            strict=True))
    outs, finals = [], []
    for start, stop, part_x, group_states in zip(bounds[:-1], bounds[1:], parts_x, parts_states,
                                                 strict=True):
        group_steps = sorted_lengths[start]
        group_x = part_x[:group_steps]  # (T_g, B_g, I)
        group_lengths = lengths[order[start:stop]]
        if sorted_lengths[stop - 1] == group_steps:  # all the same length: no padding at all
            out, final = layer._run_torch(group_x, group_states, None)
        else:
            out, final = _run_group(layer, group_x, group_states, group_lengths, weights)
        outs.append(F.pad(out, (0, 0, 0, 0, 0, steps - group_steps)))  # (T, B_g, D*H)
        finals.append(final)
    unsort = torch.argsort(order).to(x.device)
    out = torch.cat(outs, dim=1).index_select(1, unsort)
    final = tuple(torch.cat(parts, dim=1).index_select(1, unsort)
                  for parts in zip(*finals, strict=True))
    return out, final


def _run_group(layer: _Recurrent, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor,
               weights: dict[str, tuple[Tensor | None, ...]]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Layers bottom to top, each direction one padded kernel call (see the module docstring);
    `weights` by suffix, from `_driven`."""
    steps, batch = x.shape[0], x.shape[1]
    time = torch.arange(steps, device=x.device)[:, None]  # (T, 1)
    lengths_on = lengths.to(x.device)[None, :]  # (1, B)
    valid = (time < lengths_on).unsqueeze(-1)  # (T, B, 1)
    reverse_rows = reversal_rows(lengths_on[0], steps)  # (T*B,)
    last = (lengths_on - 1).unsqueeze(-1).expand(1, batch, layer.hidden_size)  # (1, B, H)
    is_lstm = layer.num_states == 2
    padding = (~valid).to(x.dtype) if is_lstm else None  # (T, B, 1): the extra input feature
    finals: list[list[Tensor]] = [[] for _ in range(layer.num_states)]
    layer_input = x
    for number in range(layer.num_layers):
        outputs = []
        if padding is not None:  # once for both directions: reversal leaves the padding in place
            layer_input = torch.cat([layer_input, padding], dim=2)  # (T, B, I+1)
        for direction, suffix in enumerate(layer._suffixes(number)):
            index = number * layer.num_directions + direction
            inputs = (layer_input if direction == 0
                      else reverse_within_lengths(layer_input, reverse_rows))
            start = tuple(s[index:index + 1] for s in states)  # (1, B, H) each
            out, c_n = _run_direction(layer, inputs, start, weights[suffix])
            finals[0].append(out.gather(0, last).squeeze(0))  # h at each sequence's last step
            if is_lstm:
                finals[1].append(c_n)
            outputs.append(out if direction == 0 else reverse_within_lengths(out, reverse_rows))
        layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        layer_input = torch.where(valid, layer_input, 0.0)  # zeros past each end (T, B, D*H)
        if layer.dropout and layer.training and number < layer.num_layers - 1:
            layer_input = F.dropout(layer_input, layer.dropout, training=True)
    return layer_input, tuple(torch.stack(parts) for parts in finals)


def _driven(layer: _Recurrent, weights: tuple[Tensor, Tensor, Tensor | None, Tensor | None]
            ) -> tuple[Tensor | None, ...]:
    """An LSTM's weights with W_ih widened by the padding feature's column, which drives
    f -> 1 and i -> 0 (gates i, f, g, o); other cells' weights as they are."""
    if layer.num_states != 2:
        return weights
    weight_ih, *rest = weights
    hidden = layer.hidden_size
    drive = weight_ih.new_zeros(4 * hidden, 1)
    drive[:hidden] = -PAD_DRIVE
    drive[hidden:2 * hidden] = PAD_DRIVE
    return (torch.cat([weight_ih, drive], dim=1), *rest)  # (4H, I+1)


def _run_direction(layer: _Recurrent, x: Tensor, start: tuple[Tensor, ...],
                   weights: tuple[Tensor | None, ...]) -> tuple[Tensor, Tensor | None]:
    """One layer, one direction, one padded kernel call: out (T, B, H) and, for LSTM, c_n (B, H).
    An LSTM's x carries the padding feature and its weights are `_driven`."""
    flat = [w for w in weights if w is not None]
    hx = start if len(start) == 2 else start[0]
    result = layer._torch_kernel()(x, hx, flat, layer.bias, 1, 0.0, layer.training, False, False)
    return result[0], (result[2][0] if layer.num_states == 2 else None)


def reversal_rows(lengths: Tensor, steps: int) -> Tensor:
    """(T*B,) for `reverse_within_lengths`: the row t'*B + b that position (t, b) of a (T, B, F)
    tensor reads, t' = length_b - 1 - t inside sequence b and t' = t in its padding. Built once
    per forward pass, on the device of `lengths`."""
    batch = lengths.shape[0]
    time = torch.arange(steps, device=lengths.device)[:, None]  # (T, 1)
    length_row = lengths[None, :]  # (1, B)
    source = torch.where(time < length_row, length_row - 1 - time, time)  # (T, B)
    return (source * batch + torch.arange(batch, device=lengths.device)).reshape(-1)


def reverse_within_lengths(x: Tensor, rows: Tensor) -> Tensor:
    """x (T, B, F) with each sequence reversed within its own length (`rows` from
    `reversal_rows`). Copies whole rows of F features (index_select over the T*B rows): on the
    CPU about ten times faster than `gather` with an index per element, and its backward adds
    rows back the same way."""
    return x.reshape(rows.numel(), -1).index_select(0, rows).view(x.shape)
