"""Recurrent layers: cells unrolled over time, stacked, bidirectional, with lengths and state.

`RNN`, `LSTM` and `GRU` take torch's arguments and parameter names (`weight_ih_l0`,
`weight_hh_l1_reverse`, ...), so a `torch.nn.LSTM` state_dict loads into them and back.
Call: `out, state = layer(x, state=None, lengths=None)` (or a `PackedSequence` in and out).

Two paths compute the same numbers (tested against each other and against torch):
- `impl="loop"` projects the inputs of all steps with one matrix product, then steps the cell's
  own `recurrence` (the equations in `cells.py`) through time;
- `impl="fused"` runs torch's fused kernels (oneDNN on CPU, cuDNN on GPU) for the standard cells
  and the hand-written BPTT of `fused.py` for the variants torch lacks (peephole LSTM, minimal
  GRU) and, on the CPU, for GRU and RNN from the hidden size where it beats torch's non-oneDNN
  kernel (`own_bptt_min_hidden`); batches with lengths run torch's padded kernel with the packed
  path's numbers (`lengths.py`, `lengths_kernel`); `impl="auto"` (default) takes `fused`.

Shapes (legend in cells.py): x (T, B, I), or (B, T, I) with batch_first; out (T, B, D*H);
h_n (L*D, B, H) with L layers and D = 2 if bidirectional else 1, as torch.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.nn import fused, native
from rnnlab.nn import lengths as lengths_path
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell, _uniform_
from rnnlab.nn.errors import RecurrentShapeError, RecurrentValueError

State = Tensor | tuple[Tensor, Tensor]
IMPLS = ("auto", "fused", "loop")
# The largest `input_table` inference keeps (a 20k-word vocabulary for a bidirectional LSTM of
# 256 is 164 MB and computes its projections instead).
INPUT_TABLE_MAX_BYTES = 128 * 2**20


def _dropout_outside_kernel(x: Tensor) -> bool:
    """Whether between-layer dropout must be applied by torch rather than by the fused kernel.

    cuDNN keeps a dropout state of its own, seeded by one draw from torch's CUDA generator the
    first time a process trains with dropout > 0 (even on one layer, where it drops nothing). A
    checkpoint cannot restore that state, and the extra draw shifts every later mask, so a
    resumed run would drift from an uninterrupted one. On CUDA the kernel therefore never gets a
    dropout: several layers run one by one with torch's dropout between them. (On the CPU the
    kernel's dropout is torch's own, drawn from the generator a checkpoint saves.)
    """
    return x.is_cuda


def _check_arguments(input_size: Any, hidden_size: Any, num_layers: Any, bias: Any,
                     batch_first: Any, dropout: Any) -> None:
    """torch.nn.RNNBase's constructor checks, with its exception classes and its warning."""
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise RecurrentValueError(f"{name} must be greater than zero, got {value}")
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) \
            or not 0 <= dropout <= 1:
        raise RecurrentValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(  # torch's own warning, word for word
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
            f"expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}", stacklevel=4,
        )


class _Recurrent(nn.Module):
    """Parameters, validation, stacking and direction handling shared by RNN, LSTM and GRU.

    A subclass says how many gates its cell has (`num_gates`), whether torch has a fused kernel
    for its configuration (`_torch_kernel`), and how to run one direction of one layer
    (`_run_loop`, `_run_fused`).
    """

    num_gates = 1
    num_states = 1  # LSTM: 2 (h and c)
    proj_size = 0  # torch's LSTM projections; rnnlab refuses proj_size > 0 (see LSTM)
    # How a batch with lengths runs through torch's kernel (standard cells, impl "auto"/"fused"):
    # "packed" as torch.nn does, "padded" through the faster padded kernel with the same numbers
    # (lengths.py), "auto" padded where measured faster (lengths.applies: training, float32 on
    # the CPU, from `padded_lengths_min_hidden`).
    lengths_kernel = "auto"
    padded_lengths_min_hidden = 1  # GRU, RNN: from 256 (see lengths.applies)

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
        impl: str = "auto", device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if impl not in IMPLS:
            raise RecurrentValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.impl = impl
        self.num_directions = 2 if bidirectional else 1
        gates = self.num_gates * hidden_size
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(
                    "weight_ih" + suffix, nn.Parameter(torch.empty(gates, layer_input, **factory))
                )
                self.register_parameter(
                    "weight_hh" + suffix, nn.Parameter(torch.empty(gates, hidden_size, **factory))
                )
                if bias:
                    self.register_parameter("bias_ih" + suffix,
                                            nn.Parameter(torch.empty(gates, **factory)))
                    self.register_parameter("bias_hh" + suffix,
                                            nn.Parameter(torch.empty(gates, **factory)))
                self._extra_parameters(suffix, factory)
        self.reset_parameters()

    @property
    def mode(self) -> str:
        """torch.nn.RNNBase's name of the cell: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU"."""
        raise NotImplementedError

    # -- parameters --------------------------------------------------------------------------

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _extra_parameters(self, suffix: str, factory: dict[str, Any]) -> None:
        """Hook for parameters torch does not have (peepholes)."""

    def _weight_names(self, suffix: str) -> list[str]:
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        return [name + suffix for name in names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """As torch.nn.RNNBase: per layer and direction, [weight_ih, weight_hh, (bias_ih, bias_hh)]
        (then the peepholes, which torch does not have), read as attributes like in forward."""
        return [[getattr(self, name) for name in self._weight_names(suffix)]
                + list(self._peepholes(suffix) or ())
                for layer in range(self.num_layers) for suffix in self._suffixes(layer)]

    def _peepholes(self, suffix: str) -> tuple[Tensor, Tensor, Tensor] | None:
        return None

    def reset_parameters(self) -> None:
        _uniform_(list(self.parameters()), self.hidden_size)

    def _weights(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """The weights of one layer and direction, read by plain attribute access at every call,
        so that parametrizations (orthogonal) and pruning, which replace the attribute, apply."""
        def get(name: str) -> Tensor:
            return getattr(self, name)

        if self.bias:
            return get("weight_ih" + suffix), get("weight_hh" + suffix), \
                get("bias_ih" + suffix), get("bias_hh" + suffix)
        return get("weight_ih" + suffix), get("weight_hh" + suffix), None, None

    def _flat_weights(self) -> list[Tensor]:
        """Weights in the order torch's fused kernels expect: per layer, per direction."""
        flat: list[Tensor] = []
        for layer in range(self.num_layers):
            for suffix in self._suffixes(layer):
                flat.extend(w for w in self._weights(suffix) if w is not None)
        return flat

    def flatten_parameters(self) -> None:
        """Accepted for compatibility with torch.nn.RNNBase; the weights stay separate tensors."""

    # -- validation ----------------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        """x is (T, B, I) here; torch's exception classes, rnnlab's messages."""
        name = type(self).__name__
        if x.shape[-1] != self.input_size:
            raise RecurrentShapeError(
                f"{name} expects input feature size {self.input_size}, got {x.shape[-1]}"
            )
        if x.shape[0] == 0:
            raise RecurrentShapeError(f"{name} got a sequence of length 0")
        weight = next(self.parameters())  # not an attribute: a parametrization would run here
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise RecurrentValueError(
                f"{name} input dtype {x.dtype} does not match the weights' dtype {weight.dtype}: "
                f"convert the input (x.to({weight.dtype})) or the layer (layer.to({x.dtype}))"
            )

    def _check_lengths(self, lengths: Tensor | list[int], batch: int, steps: int
                       ) -> Tensor | None:
        """lengths as int64 on the CPU; None when nothing is padded (every sequence fills all
        steps), so the faster unmasked path runs."""
        lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1:
            raise RecurrentValueError(
                f"lengths must be 1-D (B,), got shape {tuple(lengths.shape)}")
        if lengths.shape[0] != batch:
            raise RecurrentValueError(
                f"lengths has {lengths.shape[0]} entries for a batch of {batch}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise RecurrentValueError(f"lengths must be integers, got {lengths.dtype}")
        lengths = lengths.to("cpu", torch.int64)
        if int(lengths.min()) < 1:
            raise RecurrentValueError(
                "lengths must be >= 1 (a sequence of length 0 has no last state)")
        if int(lengths.max()) > steps:
            raise RecurrentValueError(
                f"lengths has {int(lengths.max())} but the input has only {steps} time steps"
            )
        return None if bool((lengths == steps).all()) else lengths

    def _check_state(self, state: Any, x: Tensor, unbatched: bool = False) -> tuple[Tensor, ...]:
        """The state as a tuple of (L*D, B, H) tensors; an unbatched state (L*D, H) gets B = 1."""
        expected = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        name = type(self).__name__
        if state is None:
            zeros = x.new_zeros(expected)
            return (zeros,) * self.num_states
        parts = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(parts) != self.num_states:
            want = "a tuple (h, c)" if self.num_states == 2 else "one tensor h"
            raise RecurrentValueError(f"{name} state must be {want}, got {len(parts)} tensor(s)")
        want_dim = 2 if unbatched else 3
        if any(part.dim() != want_dim for part in parts):
            layout = "unbatched 2-D input" if unbatched else "batched 3-D input"
            raise RecurrentShapeError(
                f"{name}: for a {layout} the state must be {want_dim}-D, got "
                f"{', '.join(f'{part.dim()}-D' for part in parts)}"
            )
        if unbatched:
            parts = tuple(part.unsqueeze(1) for part in parts)  # (L*D, 1, H)
        for part in parts:
            if tuple(part.shape) != expected:
                raise RecurrentShapeError(
                    f"{name} state must have shape (num_layers*num_directions, B, H) = "
                    f"{expected}, got {tuple(part.shape)}"
                )
        return parts

    # -- forward -------------------------------------------------------------------------------

    def forward(
        self, x: Tensor | PackedSequence, state: State | None = None,
        lengths: Tensor | list[int] | None = None, *, hx: State | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        """x (T, B, I) or (B, T, I) with batch_first, or unbatched (T, I), or a PackedSequence.

        `hx` is torch's name for `state` (pass one of them).
        """
        if hx is not None:
            if state is not None:
                raise RecurrentValueError("pass the initial state as state= or hx=, not both")
            state = hx
        packed = x if isinstance(x, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise RecurrentValueError("pass either a PackedSequence or lengths, not both")
            x, lengths = pad_packed_sequence(packed, batch_first=self.batch_first)
        name = type(self).__name__
        if x.dim() not in (2, 3):
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise RecurrentValueError(
                f"{name} expects a 3-D input {layout} or an unbatched 2-D (T, I), "
                f"got {x.dim()}-D {tuple(x.shape)}"
            )
        unbatched = x.dim() == 2
        if unbatched:
            if lengths is not None:
                raise RecurrentValueError(f"{name}: lengths need a batched 3-D input")
            x = x.unsqueeze(0 if self.batch_first else 1)
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        self._check_input(x)
        steps, batch = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = self._check_lengths(lengths, batch, steps)
        states = self._check_state(state, x, unbatched)

        if batch == 0:
            out, final = self._empty_batch(x, states)
        elif self.impl == "loop":
            out, final = self._stack(x, states, lengths, self._run_loop)
        elif self._torch_kernel() is not None and not self._own_bptt(x, lengths):
            out, final = self._run_torch_float32(x, states, lengths)
        else:
            out, final = self._run_own_bptt(x, states, lengths)

        if self.batch_first:
            out = out.transpose(0, 1)  # (B, T, D*H)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)  # (T, D*H)
            final = tuple(s.squeeze(1) for s in final)  # (L*D, H)
        result_state: State = final[0] if self.num_states == 1 else (final[0], final[1])
        if packed is not None:
            return _repack(out, packed, self.batch_first), result_state
        return out, result_state

    def _empty_batch(self, x: Tensor, states: tuple[Tensor, ...]
                     ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """What torch returns for an empty batch x (T, 0, F): empty outputs and states."""
        out = x.new_zeros(x.shape[0], 0, self.num_directions * self.hidden_size)
        return out, tuple(s.new_zeros(s.shape) for s in states)

    def forward_projected(
        self, x_proj: Tensor, state: State | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor, State]:
        """As `forward`, from the first layer's input projections instead of its input.

        x_proj (T, B, D*G*H), or (B, T, D*G*H) with batch_first: direction d's W_ih x_t + b_ih
        in block d, typically rows of `input_table` looked up by token ids. Runs fused.py's
        recurrences (compiled where built), which start from projections; torch's kernels
        start from inputs. Same outputs and states as `forward` on the inputs.
        """
        width = self.num_directions * self.num_gates * self.hidden_size
        name = type(self).__name__
        if x_proj.dim() != 3 or x_proj.shape[-1] != width:
            raise RecurrentShapeError(
                f"{name}.forward_projected expects a 3-D x_proj with {width} features "
                f"(directions x gates x hidden), got {tuple(x_proj.shape)}")
        if self.batch_first:
            x_proj = x_proj.transpose(0, 1)  # (T, B, D*G*H)
        steps, batch = x_proj.shape[0], x_proj.shape[1]
        if steps == 0:
            raise RecurrentShapeError(f"{name} got a sequence of length 0")
        if lengths is not None:
            lengths = self._check_lengths(lengths, batch, steps)
        states = self._check_state(state, x_proj)
        if batch == 0:
            out, final = self._empty_batch(x_proj, states)
        else:
            out, final = self._run_own_bptt(x_proj, states, lengths, projected=True)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, final[0] if self.num_states == 1 else (final[0], final[1])

    def looks_up_inputs(self, embedding_weight: Tensor, batch: int) -> bool:
        """Whether a layer fed by this embedding runs a batch faster from `input_table`: at
        inference (no gradient), through the compiled loops, for two sequences or more, where
        the input projection is at least a third of the layer's arithmetic (input_size >=
        hidden_size / 2) and the table is at most INPUT_TABLE_MAX_BYTES.

        Measured on the SST-2 BiLSTM (300 -> 2 x 150, one thread, whole `predict` calls):
        1.2x faster per sentence in batches of 2-8, 1.25x in batches of 16-32; one sentence
        alone, 0.95x: torch's kernel runs it without lengths, padded, through oneDNN.
        """
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # export: torch's ops only
            return False
        vocabulary, width = embedding_weight.shape
        table_bytes = vocabulary * self.num_directions * self.num_gates * self.hidden_size \
            * embedding_weight.element_size()
        return (batch >= 2 and not self.training and not torch.is_grad_enabled()
                and self.impl != "loop" and 2 * width >= self.hidden_size
                and table_bytes <= INPUT_TABLE_MAX_BYTES
                and native.extension_for(embedding_weight) is not None)

    def input_table(self, embedding_weight: Tensor) -> Tensor:
        """W_ih e_v + b_ih of the first layer for every row e_v of an embedding (V, I):
        (V, D*G*H), directions side by side as `forward_projected` reads them. A layer fed by
        that embedding can then look its projections up instead of computing them, at
        inference (it holds no gradient). Kept until a weight changes (their versions)."""
        projections = [(weight_ih, bias_ih) for weight_ih, _, bias_ih, _ in
                       (self._weights(suffix) for suffix in self._suffixes(0))]
        weights = [embedding_weight, *(w for pair in projections for w in pair)]
        key = tuple((w.data_ptr(), w._version) for w in weights if w is not None)
        cached = getattr(self, "_input_table_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                table = torch.cat([F.linear(embedding_weight, weight_ih, bias_ih)
                                   for weight_ih, bias_ih in projections], dim=1)
            self._input_table_cache = (key, table)
        return self._input_table_cache[1]

    def _run_own_bptt(
        self, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor | None,
        projected: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """fused.py's BPTT over all layers. For the compiled loops a batch with lengths runs
        longest first: the sequences still running at a step are then the first rows, and the
        loops compute only those (the work of torch's packed kernel, not of the padded batch)."""
        if lengths is None or native.extension_for(x) is None:
            return self._stack(x, states, lengths, self._run_fused, projected)
        order = torch.argsort(lengths, descending=True, stable=True)
        if bool((order == torch.arange(len(order))).all()):
            return self._stack(x, states, lengths, self._run_fused, projected)
        order_x = order.to(x.device)
        unorder = torch.argsort(order_x)
        out, final = self._stack(x.index_select(1, order_x),
                                 tuple(s.index_select(1, order_x) for s in states),
                                 lengths.index_select(0, order), self._run_fused, projected)
        return out.index_select(1, unorder), tuple(f.index_select(1, unorder) for f in final)

    def _stack(
        self, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor | None,
        run_direction: Callable[..., tuple[Tensor, tuple[Tensor, ...]]],
        projected: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Layers bottom to top; in each, the forward and (if bidirectional) the reverse pass.

        `projected`: x is the first layer's input projections (T, B, D*G*H), direction d's in
        block d (see `forward_projected`), in time order; the reverse direction's block is read
        reversed within each length, like the inputs it replaces.
        """
        mask = reverse_rows = None
        if lengths is not None:
            steps = torch.arange(x.shape[0], device=x.device)[:, None]  # (T, 1)
            lengths_on = lengths.to(x.device)  # (B,)
            mask = (steps < lengths_on[None, :]).unsqueeze(-1).to(x.dtype)  # (T, B, 1)
            # The reverse direction reads each sequence from its own last step back to its first:
            # position t maps to length-1-t inside the sequence, padding stays where it is.
            reverse_rows = lengths_path.reversal_rows(lengths_on, x.shape[0])  # (T*B,)
        # fused.py's sequences take b_ih apart and add it inside their loops (see fused.project)
        fold_input_bias = run_direction == self._run_fused
        finals: list[list[Tensor]] = [[] for _ in range(self.num_states)]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                index = layer * self.num_directions + direction
                weight_ih, weight_hh, bias_ih, bias_hh = self._weights(suffix)
                input_bias = None  # b_ih, where x_proj was projected without it
                if projected and layer == 0:
                    gates = weight_hh.shape[0]
                    x_proj = x[..., direction * gates:(direction + 1) * gates]
                    if direction == 1:
                        x_proj = _reverse_time(x_proj, reverse_rows)
                    x_proj = x_proj.contiguous()
                else:
                    inputs = layer_input
                    if direction == 1:
                        inputs = _reverse_time(layer_input, reverse_rows)
                    if fold_input_bias:
                        x_proj, input_bias = fused.project(inputs, weight_ih), bias_ih
                    else:
                        x_proj = F.linear(inputs, weight_ih, bias_ih)  # (T, B, G*H): all steps
                start = tuple(s[index] for s in states)
                extra = () if input_bias is None else (input_bias,)  # _run_fused's bias_ih
                out, final = run_direction(x_proj, start, weight_hh, bias_hh, suffix, mask, *extra)
                if direction == 1:
                    out = _reverse_time(out, reverse_rows)
                outputs.append(out)
                for i, s in enumerate(final):
                    finals[i].append(s)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, tuple(torch.stack(f) for f in finals)

    # Hidden size from which the Python time loop of fused.py beats torch's kernel on padded CPU
    # batches (never for LSTM, whose kernel is oneDNN's); None: never. Where fused.py's loops
    # run compiled (native.py), they beat torch's GRU/RNN kernel at every size measured.
    own_bptt_min_hidden: int | None = None

    def _own_bptt(self, x: Tensor, lengths: Tensor | None = None) -> bool:
        """Whether fused.py's BPTT rather than torch's kernel runs this batch.

        With lengths, only the compiled loops and only in training: their masked loop measured
        1.2-1.9x torch's packed GRU/RNN (B 16-64, H 100-256, one thread), where the Python loop
        was not measured to win and inference keeps torch's packed kernel, as for the LSTM.
        """
        if self.own_bptt_min_hidden is None or x.device.type != "cpu":
            return False
        if lengths is not None:
            return self.lengths_kernel == "auto" and torch.is_grad_enabled() \
                and native.extension_for(x) is not None
        return self.hidden_size >= self.own_bptt_min_hidden or native.extension_for(x) is not None

    def _padded_lengths(self, x: Tensor) -> bool:
        if self.lengths_kernel not in ("auto", "padded", "packed"):
            raise RecurrentValueError(
                f"lengths_kernel must be 'auto', 'padded' or 'packed', got {self.lengths_kernel!r}")
        if self.lengths_kernel == "auto":
            return lengths_path.applies(self, x)
        return self.lengths_kernel == "padded"

    def _run_torch_float32(
        self, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """torch's kernel, in float32 even under autocast, as fused.py's recurrences (see its
        docstring); on CPUs without bf16 support oneDNN cannot even build a bf16 LSTM."""
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return self._run_torch_float32(x.float(), tuple(s.float() for s in states),
                                               lengths)
        if lengths is not None and self._padded_lengths(x):
            return lengths_path.run(self, x, states, lengths)  # same numbers, faster
        return self._run_torch(x, states, lengths)

    def _run_torch(
        self, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """torch's own fused kernel over all layers and directions (the speed reference)."""
        weights = self._flat_weights()
        if not (_dropout_outside_kernel(x) and self.training and self.dropout
                and self.num_layers > 1):
            dropout = self.dropout if self.num_layers > 1 else 0.0
            return self._run_kernel(x, states, lengths, weights, self.num_layers, dropout)
        per_layer, directions = len(weights) // self.num_layers, self.num_directions
        finals: list[tuple[Tensor, ...]] = []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            start = tuple(s[layer * directions:(layer + 1) * directions] for s in states)
            layer_weights = weights[layer * per_layer:(layer + 1) * per_layer]
            layer_input, final = self._run_kernel(layer_input, start, lengths, layer_weights, 1,
                                                  0.0)
            finals.append(final)
        return layer_input, tuple(torch.cat(parts) for parts in zip(*finals, strict=True))

    def _run_kernel(
        self, x: Tensor, states: tuple[Tensor, ...], lengths: Tensor | None,
        weights: list[Tensor], num_layers: int, dropout: float,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One call of torch's kernel over `num_layers` layers with their flat `weights`."""
        kernel = self._torch_kernel()
        hx: Any = states if self.num_states == 2 else states[0]
        args = (weights, self.bias, num_layers, dropout, self.training, self.bidirectional)
        if lengths is None:
            result = kernel(x, hx, *args, False)
            return result[0], tuple(result[1:])
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx = tuple(s.index_select(1, order) for s in states)
        result = kernel(packed.data, packed.batch_sizes, hx if self.num_states == 2 else hx[0],
                        *args)
        out_packed = PackedSequence(result[0], packed.batch_sizes, order, unorder)
        out, _ = pad_packed_sequence(out_packed, total_length=x.shape[0])
        return out, tuple(s.index_select(1, unorder) for s in result[1:])

    # -- subclass hooks ------------------------------------------------------------------------

    def _torch_kernel(self) -> Callable[..., Any] | None:
        raise NotImplementedError

    def step(self, x: Tensor | None, state: State | None = None, *,
             x_proj: Tensor | None = None) -> tuple[Tensor, State]:
        """One time step, x (B, I) -> h (B, H), for generation and beam search.

        Steps the cells' equations directly: calling a fused kernel for a single step costs
        about a millisecond of overhead, several times the arithmetic of a small cell.
        `x_proj` may replace `x` with the first layer's input projection W_ih x + b_ih (B, G*H),
        e.g. looked up from a table precomputed for every token of a vocabulary.
        Unidirectional layers only (a reverse direction needs the whole sequence).
        """
        if self.bidirectional:
            raise RecurrentValueError("step() needs a unidirectional layer")
        if x_proj is None and (x is None or x.dim() != 2 or x.shape[1] != self.input_size):
            shape = None if x is None else tuple(x.shape)
            raise RecurrentShapeError(f"step() expects (B, {self.input_size}), got {shape}")
        like = x_proj if x_proj is not None else x
        states = self._check_state(state, like.unsqueeze(0))
        finals: list[tuple[Tensor, ...]] = []
        layer_input = x
        for layer in range(self.num_layers):
            suffix = f"_l{layer}"
            weight_ih, weight_hh, bias_ih, bias_hh = self._weights(suffix)
            start = tuple(s[layer] for s in states)
            if layer > 0 or x_proj is None:
                x_proj = F.linear(layer_input, weight_ih, bias_ih)  # (B, G*H)
            new = self._recurrence(weight_hh, bias_hh, suffix)(x_proj, start)
            finals.append(new)
            layer_input = new[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        if len(finals) == 1:  # a view, not a copy: this runs once per generated token
            stacked = tuple(part.unsqueeze(0) for part in finals[0])
        else:
            stacked = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        return layer_input, stacked[0] if self.num_states == 1 else (stacked[0], stacked[1])

    def _recurrence(
        self, weight_hh: Tensor, bias_hh: Tensor | None, suffix: str
    ) -> Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]]:
        """The cell's equations for one step: (x_proj_t, state) -> new state (h first)."""
        raise NotImplementedError

    def _run_loop(self, x_proj, start, weight_hh, bias_hh, suffix, mask):  # noqa: ANN001
        return _masked_loop(x_proj, start, mask, self._recurrence(weight_hh, bias_hh, suffix))

    def _run_fused(self, x_proj, start, weight_hh, bias_hh, suffix, mask,  # noqa: ANN001
                   bias_ih=None):
        raise NotImplementedError

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        if not self.bias:
            parts.append("bias=False")
        if self.batch_first:
            parts.append("batch_first=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        if self.bidirectional:
            parts.append("bidirectional=True")
        parts.append(f"impl={self.impl!r}")
        return ", ".join(parts)


def _reverse_time(x: Tensor, reverse_rows: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length (x (T, B, F)); plain flip without lengths."""
    if reverse_rows is None:
        return x.flip(0)
    return lengths_path.reverse_within_lengths(x, reverse_rows)


def _repack(out: Tensor, like: PackedSequence, batch_first: bool) -> PackedSequence:
    """Pack `out` with exactly the batch order and sizes of the input PackedSequence."""
    batch_dim = 0 if batch_first else 1
    if like.sorted_indices is not None:
        out = out.index_select(batch_dim, like.sorted_indices)
    lengths = _lengths_from_batch_sizes(like.batch_sizes)
    data = pack_padded_sequence(out, lengths, batch_first=batch_first, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _lengths_from_batch_sizes(batch_sizes: Tensor) -> Tensor:
    """Sorted lengths (descending) from a PackedSequence's batch_sizes."""
    batch = int(batch_sizes[0])
    return (batch_sizes.unsqueeze(0) > torch.arange(batch).unsqueeze(1)).sum(1)


def _masked_loop(
    x_proj: Tensor, start: tuple[Tensor, ...], mask: Tensor | None,
    step: Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]],
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Step `step` over time; past a sequence's end the state is carried and the output is 0."""
    state = start
    outputs = []
    masks = mask.unbind(0) if mask is not None else (None,) * x_proj.shape[0]
    for x_t, m in zip(x_proj.unbind(0), masks, strict=True):  # x_t (B, G*H), m (B, 1)
        new = step(x_t, state)
        if m is None:
            state = new
            outputs.append(new[0])
        else:
            state = tuple(m * n + (1 - m) * s for n, s in zip(new, state, strict=True))
            outputs.append(m * new[0])
    return torch.stack(outputs), state  # (T, B, H)


class RNN(_Recurrent):
    """Elman RNN layer, `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)` (see RNNCell)."""

    num_gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1,
        nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
        dropout: float = 0.0, bidirectional: bool = False, impl: str = "auto",
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise RecurrentValueError(
                f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, impl, device, dtype)

    # as GRU: fused.py measured 1.09-1.22x torch's kernel at H 512-650, 0.87x at H 200
    own_bptt_min_hidden = 256
    padded_lengths_min_hidden = 256

    @property
    def mode(self) -> str:
        return "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"

    def _torch_kernel(self):
        return torch.rnn_tanh if self.nonlinearity == "tanh" else torch.rnn_relu

    def _recurrence(self, weight_hh, bias_hh, suffix):
        def step(x_t, state):
            return (RNNCell.recurrence(x_t, state[0], weight_hh, bias_hh, self.nonlinearity),)

        return step

    def _run_fused(self, x_proj, start, weight_hh, bias_hh, suffix, mask, bias_ih=None):
        out, h = fused.rnn_sequence(x_proj, start[0], weight_hh, bias_hh, self.nonlinearity, mask,
                                    bias_ih)
        return out, (h,)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_Recurrent):
    """LSTM layer (see LSTMCell for the equations); state is `(h, c)`.

    `peephole=True` adds diagonal peephole weights `weight_ci_l0`, `weight_cf_l0`,
    `weight_co_l0` (and `..._reverse`) that torch's LSTM does not have; torch's fused kernel
    cannot run them, so they take the hand-written BPTT of `fused.py`. `forget_bias` adds a
    constant to the forget-gate biases at initialisation (0.0 keeps torch's init).
    """

    num_gates = 4
    num_states = 2

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
        peephole: bool = False, forget_bias: float = 0.0, impl: str = "auto",
        proj_size: int = 0, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not isinstance(proj_size, int) or proj_size < 0:
            raise RecurrentValueError(
                f"proj_size should be a positive integer or zero, got {proj_size!r}")
        if proj_size > 0:  # torch's argument, accepted so that torch code runs; 0 only
            raise RecurrentValueError(
                f"rnnlab's LSTM has no projections (proj_size={proj_size}); use proj_size=0, or "
                "torch.nn.LSTM for projected states")
        self.peephole = peephole
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, impl, device, dtype)

    @property
    def mode(self) -> str:
        return "LSTM"

    def _extra_parameters(self, suffix: str, factory: dict[str, Any]) -> None:
        if self.peephole:
            for name in ("weight_ci", "weight_cf", "weight_co"):
                self.register_parameter(
                    name + suffix, nn.Parameter(torch.empty(self.hidden_size, **factory)))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias and self.forget_bias:
            from rnnlab.nn.init import set_forget_bias_

            set_forget_bias_(self, self.forget_bias)

    def _peepholes(self, suffix: str) -> tuple[Tensor, Tensor, Tensor] | None:
        if not self.peephole:
            return None
        return (getattr(self, "weight_ci" + suffix), getattr(self, "weight_cf" + suffix),
                getattr(self, "weight_co" + suffix))

    def _torch_kernel(self):
        return None if self.peephole else torch.lstm

    def _recurrence(self, weight_hh, bias_hh, suffix):
        peepholes = self._peepholes(suffix)

        def step(x_t, state):
            return LSTMCell.recurrence(x_t, state, weight_hh, bias_hh, peepholes)

        return step

    def _run_fused(self, x_proj, start, weight_hh, bias_hh, suffix, mask, bias_ih=None):
        out, h, c = fused.lstm_sequence(
            x_proj, start[0], start[1], weight_hh, bias_hh, self._peepholes(suffix), mask, bias_ih
        )
        return out, (h, c)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", peephole=True" if self.peephole else "")


class GRU(_Recurrent):
    """GRU layer (see GRUCell): `variant="full"` as torch, or `"minimal"` (update gate only).

    The minimal variant has two gate blocks (z, n) instead of three, so its weights are
    (2H, I) and (2H, H) and it does not load torch GRU weights.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
        variant: str = "full", impl: str = "auto", device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if variant not in ("full", "minimal"):
            raise RecurrentValueError(
                f"GRU variant must be 'full' or 'minimal', got {variant!r}")
        self.variant = variant
        self.num_gates = 3 if variant == "full" else 2
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, impl, device, dtype)

    # torch's GRU kernel is not oneDNN's; fused.py measured 1.32-1.36x it at H 512-650, 0.93x at
    # H 200 (benchmarks/results/recurrent_speed.md, "GRU fused.py" rows, one thread)
    own_bptt_min_hidden = 256
    padded_lengths_min_hidden = 256

    @property
    def mode(self) -> str:
        return "GRU"

    def _torch_kernel(self):
        return torch.gru if self.variant == "full" else None

    def _recurrence(self, weight_hh, bias_hh, suffix):
        def step(x_t, state):
            return (GRUCell.recurrence(x_t, state[0], weight_hh, bias_hh, self.variant),)

        return step

    def _run_fused(self, x_proj, start, weight_hh, bias_hh, suffix, mask, bias_ih=None):
        out, h = fused.gru_sequence(x_proj, start[0], weight_hh, bias_hh, self.variant, mask,
                                    bias_ih)
        return out, (h,)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", variant={self.variant!r}"
