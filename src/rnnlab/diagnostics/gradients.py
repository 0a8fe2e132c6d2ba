"""Gradient flow through time: how much of a loss at the last step reaches each earlier state.

For a loss L on the last step's output only, backpropagation through time gives

    ∂L/∂h_t = ∂L/∂h_T · ∏_{k=t+1..T} ∂h_k/∂h_{k-1}

so the norm of ∂L/∂h_t is a product of T - t Jacobians. For a tanh RNN each Jacobian is
diag(1 - h_k²) W_hh: when its norm is below 1 the product vanishes exponentially in T - t, above
1 it can explode (Bengio et al. 1994; Pascanu et al. 2013). The LSTM's memory cell adds a path
whose Jacobian is diag(f_k), so a forget gate near 1 lets the gradient through (Hochreiter &
Schmidhuber 1997); the GRU's update gate does the same with diag(z_k).

We measure it rather than argue it: the layer is stepped one time step at a time, so every h_t
is a node of the autograd graph; `retain_grad()` keeps its gradient after one backward pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.config import field as cfg_field
from rnnlab.diagnostics.options import check_cells, check_positive, names
from rnnlab.nn.factory import make_recurrent
from rnnlab.nn.init import orthogonal_recurrent_, set_forget_bias_
from rnnlab.nn.recurrent import _Recurrent
from rnnlab.nn.utils import clip_grad_norm

# float64 throughout: a tanh RNN's gradient falls below float32's smallest number (1e-45)
# within 100 steps, and a curve of zeros says nothing about how fast it fell.
DTYPE = torch.float64
LossFn = Callable[[Tensor], Tensor]  # h_T (B, H) -> one loss per example (B,)


@dataclass(frozen=True)
class GradientCurve:
    """Mean over the batch of ||∂ℓ_b/∂h_t||, for t = 1..T (index 0 is the first step)."""

    label: str
    cell: str
    norms: list[float]
    settings: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """|∂L/∂h_1| / |∂L/∂h_T|: below 1 the gradient vanished on its way back, above it grew."""
        return self.norms[0] / self.norms[-1] if self.norms[-1] else float("inf")

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio": self.ratio, "length": len(self.norms)}


def random_layer(
    cell: str, input_size: int, hidden: int, *, seed: int = 0, orthogonal: bool = False,
    gain: float = 1.0, forget_bias: float | None = None,
) -> _Recurrent:
    """A one-layer recurrent layer with torch's initialisation, or an orthogonal W_hh.

    `gain` scales W_hh: with `orthogonal=True` every singular value of each gate's block is then
    exactly `gain`, so `gain > 1` is the textbook exploding case. `forget_bias` sets the LSTM's
    b_if + b_hf (`set_forget_bias_`).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = make_recurrent(cell, input_size, hidden, impl="loop").to(DTYPE)
        if orthogonal:
            orthogonal_recurrent_(layer, gain=gain)
        elif gain != 1.0:
            with torch.no_grad():
                for name, param in layer.named_parameters():
                    if name.startswith("weight_hh"):
                        param.mul_(gain)
    if forget_bias is not None:
        set_forget_bias_(layer, forget_bias)
    return layer


def random_inputs(length: int, batch: int, input_size: int, seed: int = 0) -> Tensor:
    """Standard normal inputs x (T, B, I), the same for every cell given the seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(length, batch, input_size, generator=generator, dtype=DTYPE)


def linear_readout(hidden: int, seed: int = 0) -> LossFn:
    """ℓ_b = w · h_T^b for a fixed random unit vector w, so ||∂ℓ_b/∂h_T|| = 1 exactly and the
    curve reads directly as the fraction of the last step's gradient that reaches step t."""
    generator = torch.Generator().manual_seed(seed + 1)
    w = torch.randn(hidden, generator=generator, dtype=DTYPE)
    w = w / w.norm()
    return lambda h_last: h_last @ w


def gradient_norms(layer: _Recurrent, x: Tensor, loss_fn: LossFn) -> tuple[list[float], Tensor]:
    """Step `layer` over x (T, B, I); return mean_b ||∂ℓ_b/∂h_t|| for every t, and L = Σ_b ℓ_b.

    The loss is summed over the batch, so the gradient row of example b is ∂ℓ_b/∂h_t^b (the
    examples do not interact). For a stacked layer h_t is the top layer's output.
    """
    layer.eval()  # no dropout between layers: the gradient of the model itself
    hs: list[Tensor] = []
    state = None
    for x_t in x.unbind(0):  # x_t (B, I)
        h_t, state = layer.step(x_t, state)  # h_t (B, H): a node of the graph
        h_t.retain_grad()
        hs.append(h_t)
    loss = loss_fn(hs[-1]).sum()
    loss.backward()
    norms = [float(h.grad.norm(dim=1).mean()) for h in hs]
    return norms, loss.detach()


def clipping_effect(layer: _Recurrent, x: Tensor, loss_fn: LossFn, max_norm: float) -> dict:
    """What clipping by norm does to one update: the parameter gradient's global norm before
    and after `clip_grad_norm` (Pascanu et al. 2013). The direction is kept; only its length
    is cut to `max_norm`, so one exploding batch cannot throw the weights far away."""
    layer.zero_grad()
    loss = loss_fn(layer(x)[0][-1]).mean()  # (B,) -> mean: the loss an optimizer would see
    loss.backward()
    params = list(layer.parameters())
    before = [p.grad.clone() for p in params]
    pre = clip_grad_norm(params, max_norm)
    post = clip_grad_norm(params, 0.0)  # max_norm <= 0 only measures
    flat_before = torch.cat([g.flatten() for g in before])
    flat_after = torch.cat([p.grad.flatten() for p in params])
    cosine = float(F.cosine_similarity(flat_before, flat_after, dim=0))
    layer.zero_grad()
    return {"max_norm": max_norm, "pre_norm": pre, "post_norm": post, "cosine": cosine}


def curve(label: str, cell: str, layer: _Recurrent, x: Tensor, loss_fn: LossFn,
          **settings: object) -> GradientCurve:
    norms, _ = gradient_norms(layer, x, loss_fn)
    return GradientCurve(label, cell, norms, dict(settings))


@dataclass(frozen=True)
class GradientStudy:
    """The cells side by side, plus the three textbook variations and what clipping does."""

    curves: list[GradientCurve]
    variants: list[GradientCurve]
    clipping: dict
    settings: dict

    def to_dict(self) -> dict:
        return {"settings": self.settings, "curves": [c.to_dict() for c in self.curves],
                "variants": [c.to_dict() for c in self.variants], "clipping": self.clipping}


@dataclass(frozen=True)
class GradientConfig:
    """What `rnnlab diagnose gradients` measures (defaults live here only; the CLI's flags are
    made from these fields)."""

    cells: tuple[str, ...] = cfg_field(("rnn", "lstm", "gru"), "comma-separated cells",
                                       parse=names, metavar="CELLS", shown="rnn,lstm,gru")
    length: int = cfg_field(100, "time steps T", ge=1)
    hidden: int = cfg_field(64, "hidden units of each cell", ge=1)
    input_size: int = cfg_field(32, "input features per step", ge=1)
    batch: int = cfg_field(32, "random sequences averaged", ge=1)
    seed: int = cfg_field(0, "random seed", ge=0)
    explode_gain: float = cfg_field(2.0, "singular value of W_hh in the exploding-RNN variant",
                                    gt=0.0)
    forget_bias: float = cfg_field(1.0, "LSTM forget-gate bias of the forget-bias variant")
    max_norm: float = cfg_field(1.0, "clipping threshold shown", gt=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))
        check_cells(self.cells)
        check_positive(self, "length", "hidden", "input_size", "batch", "max_norm")


def gradient_study(cells: list[str] | tuple[str, ...], **options: Any) -> GradientStudy:
    """Random layers of every cell on the same random inputs and the same kind of readout.

    Variants: a tanh RNN with orthogonal W_hh (singular values 1) and with W_hh = `explode_gain`
    × orthogonal (exploding), an LSTM with forget-gate bias `forget_bias`; and the norm of one
    clipped update of the exploding RNN. `options` are `GradientConfig`'s other fields.
    """
    c = GradientConfig(cells=tuple(cells), **options)  # checked here, whoever calls
    length, hidden, input_size, batch, seed = c.length, c.hidden, c.input_size, c.batch, c.seed
    explode_gain, forget_bias, max_norm = c.explode_gain, c.forget_bias, c.max_norm
    x = random_inputs(length, batch, input_size, seed)
    loss_fn = linear_readout(hidden, seed)
    curves = [curve(c, c, random_layer(c, input_size, hidden, seed=seed), x, loss_fn)
              for c in cells]
    exploding = random_layer("rnn", input_size, hidden, seed=seed, orthogonal=True,
                             gain=explode_gain)
    variants = [
        curve("rnn, torch init", "rnn", random_layer("rnn", input_size, hidden, seed=seed),
              x, loss_fn),
        curve("rnn, orthogonal W_hh", "rnn",
              random_layer("rnn", input_size, hidden, seed=seed, orthogonal=True), x, loss_fn,
              orthogonal=True),
        curve(f"rnn, {explode_gain:g} × orthogonal W_hh", "rnn", exploding, x, loss_fn,
              orthogonal=True, gain=explode_gain),
        curve("lstm, torch init", "lstm", random_layer("lstm", input_size, hidden, seed=seed),
              x, loss_fn),
        curve(f"lstm, forget bias {forget_bias:g}", "lstm",
              random_layer("lstm", input_size, hidden, seed=seed, forget_bias=forget_bias),
              x, loss_fn, forget_bias=forget_bias),
    ]
    clipping = clipping_effect(exploding, x, loss_fn, max_norm) | {
        "layer": f"rnn, {explode_gain:g} × orthogonal W_hh"}
    settings = {"length": length, "hidden": hidden, "input_size": input_size, "batch": batch,
                "seed": seed, "inputs": "N(0, 1)", "loss": "w · h_T, ||w|| = 1"}
    return GradientStudy(curves, variants, clipping, settings)


def lm_gradient_curve(model, ids: Tensor, *, length: int, batch: int, seed: int = 0,  # noqa: ANN001
                      label: str = "trained lm") -> GradientCurve:
    """The recurrent layers of a trained `LanguageModel` on `batch` windows of real text.

    The loss is the cross-entropy of the token after each window, predicted from the top
    layer's last state through the model's decoder; ids is the (N,) token stream.
    """
    if ids.numel() < length + 1:
        raise ValueError(f"the text has {ids.numel()} tokens; need at least {length + 1}")
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - length, (batch,), generator=generator)
    windows = torch.stack([ids[s : s + length + 1] for s in starts.tolist()], dim=1)  # (T+1, B)
    model = copy.deepcopy(model).to(DTYPE).eval()  # the caller's model stays as it was
    x = model.embedding(windows[:-1]).detach()  # (T, B, E)
    targets = windows[-1]  # (B,)

    def loss_fn(h_last: Tensor) -> Tensor:
        if model.projection is not None:
            h_last = model.projection(h_last)
        return F.cross_entropy(model.decoder(h_last), targets, reduction="none")

    rnn = model.rnn
    cell = rnn.__class__.__name__.lower()
    return curve(label, cell, rnn, x, loss_fn, layers=rnn.num_layers, hidden=rnn.hidden_size,
                 inputs="text windows", loss="next-token cross-entropy after the window")
