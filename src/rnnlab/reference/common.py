"""What the three NumPy references share: parameter dicts, their initialisation, the sigmoid.

Shape legend (the same as `rnnlab.nn.cells`):
    B  batch size          T  time steps          I  input features
    H  hidden size         G  number of gates (RNN 1, LSTM 4, GRU full 3, GRU minimal 2)

Parameters are a plain dict with torch's names and shapes, so a cell's state_dict converts
with one `.numpy()` per entry:
    weight_ih (G*H, I)   weight_hh (G*H, H)   bias_ih (G*H,)   bias_hh (G*H,)
    weight_ci, weight_cf, weight_co (H,)      peephole LSTM only
The biases may be left out (a cell built with `bias=False`); their gradients are then left
out too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, np.ndarray]
Cache = dict[str, Any]

NUM_GATES = {"rnn": 1, "lstm": 4, "gru": 3, "gru-minimal": 2}


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^-a), written as (1 + tanh(a/2)) / 2: the same value, no overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def affine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x W^T + b for a batch of rows, as torch's `F.linear`: (B, K) -> (B, G*H)."""
    out = x @ weight.T
    return out if bias is None else out + bias


def bias_grads(params: Params, d_ih: np.ndarray, d_hh: np.ndarray) -> Params:
    """Gradients of the biases present in `params`, from the pre-activation gradients (T, B, G*H).

    Each bias is added to the pre-activations of every step and every row, so its gradient
    is their sum over T and B.
    """
    grads = {}
    if "bias_ih" in params:
        grads["bias_ih"] = d_ih.sum(axis=(0, 1))
    if "bias_hh" in params:
        grads["bias_hh"] = d_hh.sum(axis=(0, 1))
    return grads


def init_params(
    kind: str,
    input_size: int,
    hidden_size: int,
    rng: np.random.Generator,
    *,
    bias: bool = True,
    peephole: bool = False,
    variant: str = "full",
) -> Params:
    """Float64 parameters drawn as torch draws them: U(-1/sqrt(H), 1/sqrt(H)) for each entry.

    `kind` is "rnn", "lstm" or "gru"; `peephole` applies to the LSTM, `variant` ("full" or
    "minimal") to the GRU. Float64 because the reference is checked by finite differences.
    """
    if kind not in ("rnn", "lstm", "gru"):
        raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru', got {kind!r}")
    if kind == "gru" and variant not in ("full", "minimal"):
        raise ValueError(f"GRU variant must be 'full' or 'minimal', got {variant!r}")
    gates = NUM_GATES["gru-minimal" if kind == "gru" and variant == "minimal" else kind]
    g, h = gates * hidden_size, hidden_size
    shapes = {"weight_ih": (g, input_size), "weight_hh": (g, h)}
    if bias:
        shapes |= {"bias_ih": (g,), "bias_hh": (g,)}
    if kind == "lstm" and peephole:
        shapes |= {"weight_ci": (h,), "weight_cf": (h,), "weight_co": (h,)}
    bound = 1.0 / np.sqrt(hidden_size)
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}
