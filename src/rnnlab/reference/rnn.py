"""Elman RNN in NumPy: forward and backpropagation through time, to read beside `nn.cells`.

Forward, for t = 1..T (the numbers are cited by the backward pass):
    (1) a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      pre-activation
    (2) h_t = act(a_t)                                   act = tanh or relu

Backward: the loss reaches h_t twice, directly (dhs[t]) and through h_{t+1} via (1), so the
reverse loop carries dh_next = ∂L/∂h_t from the step after. Parameter gradients are summed over
all steps after the loop, as the fused torch path does.
"""

from __future__ import annotations

import numpy as np

from rnnlab.reference.common import Cache, Params, affine, bias_grads


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, params: Params, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, Cache]:
    """Run the RNN over x (T, B, I) from h0 (B, H); return hs (T, B, H) and the backward cache."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    hs = np.empty((T, B, H), dtype=np.result_type(x, h0, w_ih))
    h = h0
    for t in range(T):
        a = affine(x[t], w_ih, b_ih) + affine(h, w_hh, b_hh)  # (1)  (B, H)
        h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)  # (2)
        hs[t] = h
    cache = {"x": x, "h0": h0, "hs": hs, "params": params, "nonlinearity": nonlinearity}
    return hs, cache


def rnn_backward(dhs: np.ndarray, cache: Cache) -> Params:
    """Gradients of a loss L given dhs = ∂L/∂hs (T, B, H), for "x", "h0" and every parameter."""
    x, h0, hs, params = cache["x"], cache["h0"], cache["hs"], cache["params"]
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    h_prev = np.concatenate([h0[None], hs[:-1]])  # h_{t-1} for every t  (T, B, H)
    da = np.empty_like(hs)  # ∂L/∂a_t  (T, B, H)
    dh_next = np.zeros_like(h0)  # ∂L/∂h_t through step t+1; nothing after the last step
    for t in reversed(range(len(hs))):
        dh = dhs[t] + dh_next  # h_t feeds the loss and (1) of step t+1
        if cache["nonlinearity"] == "tanh":
            da[t] = dh * (1.0 - hs[t] ** 2)  # (2) tanh' = 1 - tanh²
        else:
            da[t] = dh * (hs[t] > 0)  # (2) relu' = 1 where a_t > 0, i.e. where h_t > 0
        dh_next = da[t] @ w_hh  # (1) a_t = ... + W_hh h_{t-1}
    grads = {
        "x": da @ w_ih,  # (1) a_t = W_ih x_t + ...  (T, B, I)
        "h0": dh_next,  # what reached h_0 through step 1
        "weight_ih": np.einsum("tbg,tbi->gi", da, x),  # (1) summed over t and b
        "weight_hh": np.einsum("tbg,tbh->gh", da, h_prev),  # (1)
    }
    return grads | bias_grads(params, da, da)  # (1) both biases add to a_t
