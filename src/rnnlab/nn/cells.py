"""Recurrent cells, one line of code per equation of the lecture notes.

Shape legend, used in every comment of `rnnlab.nn`:
    B  batch size          T  time steps          I  input features
    H  hidden size         G  number of gates (RNN 1, LSTM 4, GRU full 3, GRU minimal 2)

Each cell keeps torch's parameter names and shapes (`weight_ih` (G*H, I), `weight_hh` (G*H, H),
`bias_ih`, `bias_hh` (G*H,)) and torch's gate order, so a `torch.nn.LSTMCell` state_dict loads
as is. The recurrence itself lives in a static `recurrence(...)` method that takes the input
projection `x_proj = W_ih x_t + b_ih` of one step: the cell's `forward` calls it after projecting
one input, and the layers in `recurrent.py` call the very same method after projecting all time
steps at once. So there is one copy of each equation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.errors import RecurrentShapeError, RecurrentValueError

LSTMState = tuple[Tensor, Tensor]


def _uniform_(parameters: list[nn.Parameter], hidden_size: int) -> None:
    """torch's default initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in parameters:
        nn.init.uniform_(p, -bound, bound)


def _either(state, hx):  # noqa: ANN001, ANN202
    """The state passed as rnnlab's keyword or as torch's `hx`, not both."""
    if state is not None and hx is not None:
        raise RecurrentValueError("pass the state positionally or as hx=, not both")
    return hx if state is None else state


class _CellBase(nn.Module):
    """Holds the four torch-named parameters of a cell with `num_gates` gates.

    `_prepare` gives the cells torch.nn's calling contract: a batch x (B, I) with states (B, H),
    or one unbatched x (I,) with states (H,); a state of the wrong shape raises (never a silent
    broadcast of a (1, H) state over the batch).
    """

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = self.num_gates * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(g, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(g, **factory))
            self.bias_hh = nn.Parameter(torch.empty(g, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_(list(self.parameters()), self.hidden_size)

    def _prepare(
        self, x: Tensor, states: tuple[Tensor | None, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...], bool]:
        """(x (B, I), states each (B, H), batched?) from a batched or unbatched call."""
        name = type(self).__name__
        if x.dim() not in (1, 2):
            raise RecurrentValueError(
                f"{name} expects input (B, {self.input_size}) or unbatched ({self.input_size},), "
                f"got {x.dim()}-D {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise RecurrentShapeError(
                f"{name} expects input feature size {self.input_size}, got {x.shape[-1]}"
            )
        batched = x.dim() == 2
        if not batched:
            x = x.unsqueeze(0)  # (1, I)
        expected = (x.shape[0], self.hidden_size)
        prepared = []
        for s in states:
            if s is None:
                prepared.append(x.new_zeros(expected))
                continue
            if s.dim() != x.dim() - (0 if batched else 1):
                raise RecurrentShapeError(
                    f"{name}: a {'batched' if batched else 'unbatched'} input needs a "
                    f"{'2-D (B, H)' if batched else '1-D (H,)'} state, got {tuple(s.shape)}"
                )
            s = s if batched else s.unsqueeze(0)
            if tuple(s.shape) != expected:
                raise RecurrentShapeError(
                    f"{name} state must have shape (B, H) = {expected}, got {tuple(s.shape)}"
                )
            prepared.append(s)
        return x, tuple(prepared), batched

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class RNNCell(_CellBase):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu."""

    num_gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise RecurrentValueError(
                f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    @staticmethod
    def recurrence(
        x_proj: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
        nonlinearity: str = "tanh",
    ) -> Tensor:
        """One step from x_proj = W_ih x_t + b_ih (B, H) and h_{t-1} (B, H) to h_t (B, H)."""
        act = torch.tanh if nonlinearity == "tanh" else torch.relu
        h = act(x_proj + F.linear(h_prev, weight_hh, bias_hh))
        return h

    def forward(self, x: Tensor, h_prev: Tensor | None = None, *,
                hx: Tensor | None = None) -> Tensor:
        """x (B, I) or (I,); `hx` is torch's name for `h_prev`."""
        x, (h_prev,), batched = self._prepare(x, (_either(h_prev, hx),))
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)  # (B, H)
        h = self.recurrence(x_proj, h_prev, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    """Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi [+ w_ci ⊙ c_{t-1}])   input gate
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf [+ w_cf ⊙ c_{t-1}])   forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)                  candidate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                                    memory cell
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho [+ w_co ⊙ c_t])       output gate
        h_t = o_t ⊙ tanh(c_t)

    Gate order in the stacked weights is torch's (i, f, g, o). With `peephole=True` the gates
    also read the memory cell through diagonal weights `weight_ci, weight_cf, weight_co` (H,)
    (Gers & Schmidhuber 2000): i and f see c_{t-1}, o sees the new c_t.
    `forget_bias` adds a constant to both forget-gate biases at initialisation (Jozefowicz et al.
    2015 recommend 1.0); the default 0.0 keeps torch's initialisation.
    """

    num_gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, peephole: bool = False,
        forget_bias: float = 0.0, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.peephole = peephole
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, bias, device, dtype)
        if peephole:
            factory = {"device": device, "dtype": dtype}
            self.weight_ci = nn.Parameter(torch.empty(hidden_size, **factory))
            self.weight_cf = nn.Parameter(torch.empty(hidden_size, **factory))
            self.weight_co = nn.Parameter(torch.empty(hidden_size, **factory))
            _uniform_([self.weight_ci, self.weight_cf, self.weight_co], hidden_size)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias and self.forget_bias:
            with torch.no_grad():
                h = self.hidden_size
                self.bias_ih[h : 2 * h] += self.forget_bias / 2
                self.bias_hh[h : 2 * h] += self.forget_bias / 2

    @staticmethod
    def recurrence(
        x_proj: Tensor, state: LSTMState, weight_hh: Tensor, bias_hh: Tensor | None,
        peepholes: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> LSTMState:
        """One step: x_proj = W_ih x_t + b_ih (B, 4H), state (h_{t-1}, c_{t-1}) -> (h_t, c_t)."""
        h_prev, c_prev = state
        gates = x_proj + F.linear(h_prev, weight_hh, bias_hh)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        if peepholes is not None:
            w_ci, w_cf, w_co = peepholes
            i = i + w_ci * c_prev
            f = f + w_cf * c_prev
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        c = f * c_prev + i * g
        if peepholes is not None:
            o = o + w_co * c
        o = torch.sigmoid(o)
        h = o * torch.tanh(c)
        return h, c

    def peepholes(self) -> tuple[Tensor, Tensor, Tensor] | None:
        return (self.weight_ci, self.weight_cf, self.weight_co) if self.peephole else None

    def forward(self, x: Tensor, state: LSTMState | None = None, *,
                hx: LSTMState | None = None) -> LSTMState:
        """x (B, I) or (I,); `hx` is torch's name for `state`."""
        state = _either(state, hx)
        if state is not None and (isinstance(state, Tensor) or len(state) != 2):
            raise RecurrentValueError("LSTMCell state must be a tuple (h, c)")
        x, state, batched = self._prepare(x, (None, None) if state is None else tuple(state))
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)  # (B, 4H)
        h, c = self.recurrence(x_proj, state, self.weight_hh, self.bias_hh, self.peepholes())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", peephole={self.peephole}"


class GRUCell(_CellBase):
    """Gated recurrent unit (Cho et al. 2014), full or minimal.

    variant="full", torch's gate order (r, z, n) and torch's formula:
        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)            reset (relevance) gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)            update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The notes write the update as h_t = Γu ⊙ h̃_t + (1 - Γu) ⊙ h_{t-1}: the same cell with
    Γu = 1 - z_t. torch (and cuDNN) apply r after the recurrent product ("reset after");
    Cho et al. apply it before (W_hn (r ⊙ h_{t-1})). We follow torch so its weights load.

    variant="minimal", the simplified GRU of the notes (update gate only), gate order (z, n):
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + W_hn h_{t-1} + b_hn)
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, variant: str = "full",
        device: torch.device | str | None = None, dtype: torch.dtype | None = None,
    ) -> None:
        if variant not in ("full", "minimal"):
            raise RecurrentValueError(
                f"GRU variant must be 'full' or 'minimal', got {variant!r}")
        self.variant = variant
        self.num_gates = 3 if variant == "full" else 2
        super().__init__(input_size, hidden_size, bias, device, dtype)

    @staticmethod
    def recurrence(
        x_proj: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None,
        variant: str = "full",
    ) -> Tensor:
        """One step: x_proj = W_ih x_t + b_ih (B, G*H), h_{t-1} (B, H) -> h_t (B, H)."""
        h_proj = F.linear(h_prev, weight_hh, bias_hh)  # (B, G*H)
        if variant == "full":
            x_r, x_z, x_n = x_proj.chunk(3, dim=1)
            h_r, h_z, h_n = h_proj.chunk(3, dim=1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
        else:
            x_z, x_n = x_proj.chunk(2, dim=1)
            h_z, h_n = h_proj.chunk(2, dim=1)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + h_n)
        h = (1 - z) * n + z * h_prev
        return h

    def forward(self, x: Tensor, h_prev: Tensor | None = None, *,
                hx: Tensor | None = None) -> Tensor:
        """x (B, I) or (I,); `hx` is torch's name for `h_prev`."""
        x, (h_prev,), batched = self._prepare(x, (_either(h_prev, hx),))
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)  # (B, G*H)
        h = self.recurrence(x_proj, h_prev, self.weight_hh, self.bias_hh, self.variant)
        return h if batched else h.squeeze(0)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", variant={self.variant!r}"
