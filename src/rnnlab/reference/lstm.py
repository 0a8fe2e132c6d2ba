"""LSTM in NumPy, with optional peepholes: forward and BPTT, to read beside `nn.cells.LSTMCell`.

Forward, for t = 1..T, gate order (i, f, g, o) in the stacked weights as torch:
    (1) a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh    pre-activations (B, 4H) = [a_i a_f a_g a_o]
    (2) i_t = σ(a_i [+ w_ci ⊙ c_{t-1}])                input gate
    (3) f_t = σ(a_f [+ w_cf ⊙ c_{t-1}])                forget gate
    (4) g_t = tanh(a_g)                                candidate
    (5) c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                memory cell
    (6) o_t = σ(a_o [+ w_co ⊙ c_t])                    output gate (its peephole reads the new c_t)
    (7) h_t = o_t ⊙ tanh(c_t)
The bracketed peephole terms (Gers & Schmidhuber 2000) are present when `peephole=True`.

Backward: the reverse loop carries two gradients from step t+1, dh_next = ∂L/∂h_t through (1)
and dc_next = ∂L/∂c_t through (2), (3) and (5) of step t+1. The derivatives used are
σ' = σ(1 - σ) and tanh' = 1 - tanh².
"""

from __future__ import annotations

import numpy as np

from rnnlab.reference.common import Cache, Params, affine, bias_grads, sigmoid


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, c0: np.ndarray, params: Params, peephole: bool = False
) -> tuple[np.ndarray, np.ndarray, Cache]:
    """Run the LSTM over x (T, B, I) from (h0, c0) (B, H) each.

    Returns hs and cs (T, B, H), the hidden and memory states of every step, and the cache.
    """
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    dtype = np.result_type(x, h0, c0, w_ih)
    i, f, g, o, hs, cs = (np.empty((T, B, H), dtype=dtype) for _ in range(6))
    h, c = h0, c0
    for t in range(T):
        a = affine(x[t], w_ih, b_ih) + affine(h, w_hh, b_hh)  # (1)  (B, 4H)
        a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # each (B, H)
        if peephole:
            a_i = a_i + params["weight_ci"] * c
            a_f = a_f + params["weight_cf"] * c
        i[t] = sigmoid(a_i)  # (2)
        f[t] = sigmoid(a_f)  # (3)
        g[t] = np.tanh(a_g)  # (4)
        c = f[t] * c + i[t] * g[t]  # (5)
        if peephole:
            a_o = a_o + params["weight_co"] * c
        o[t] = sigmoid(a_o)  # (6)
        h = o[t] * np.tanh(c)  # (7)
        hs[t], cs[t] = h, c
    cache = {
        "x": x, "h0": h0, "c0": c0, "hs": hs, "cs": cs, "gates": (i, f, g, o),
        "params": params, "peephole": peephole,
    }
    return hs, cs, cache


def lstm_backward(dhs: np.ndarray, cache: Cache, dc_T: np.ndarray | None = None) -> Params:
    """Gradients given dhs = ∂L/∂hs (T, B, H) and optionally dc_T = ∂L/∂c_T (B, H).

    Returns "x", "h0", "c0" and every parameter. dc_T serves a loss that reads the final memory
    cell, e.g. through the state handed to the next TBPTT window.
    """
    x, h0, c0, hs, cs = cache["x"], cache["h0"], cache["c0"], cache["hs"], cache["cs"]
    i, f, g, o = cache["gates"]
    params, peephole = cache["params"], cache["peephole"]
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    h_prev = np.concatenate([h0[None], hs[:-1]])  # h_{t-1} for every t  (T, B, H)
    c_prev = np.concatenate([c0[None], cs[:-1]])  # c_{t-1} for every t  (T, B, H)
    T, B, H = hs.shape
    da = np.empty((T, B, 4 * H), dtype=hs.dtype)  # ∂L/∂a_t, with peephole terms inside  (T, B, 4H)
    dh_next = np.zeros_like(h0)
    dc_next = np.zeros_like(c0) if dc_T is None else dc_T
    for t in reversed(range(T)):
        dh = dhs[t] + dh_next  # h_t feeds the loss and (1) of step t+1
        tanh_c = np.tanh(cs[t])
        do = dh * tanh_c  # (7) h = o ⊙ tanh(c)
        dc = dc_next + dh * o[t] * (1.0 - tanh_c**2)  # (7), plus c_t's use in step t+1
        da_o = do * o[t] * (1.0 - o[t])  # (6)
        if peephole:
            dc = dc + da_o * params["weight_co"]  # (6) o reads c_t through w_co
        di = dc * g[t]  # (5) c = f ⊙ c_prev + i ⊙ g
        df = dc * c_prev[t]  # (5)
        dg = dc * i[t]  # (5)
        dc_next = dc * f[t]  # (5) ∂L/∂c_{t-1}, completed below by the peepholes
        da_i = di * i[t] * (1.0 - i[t])  # (2)
        da_f = df * f[t] * (1.0 - f[t])  # (3)
        da_g = dg * (1.0 - g[t] ** 2)  # (4)
        if peephole:
            dc_next = dc_next + da_i * params["weight_ci"] + da_f * params["weight_cf"]  # (2) (3)
        da[t] = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (1) gate order i, f, g, o
        dh_next = da[t] @ w_hh  # (1) a_t = ... + W_hh h_{t-1}
    grads = {
        "x": da @ w_ih,  # (1) a_t = W_ih x_t + ...  (T, B, I)
        "h0": dh_next,
        "c0": dc_next,
        "weight_ih": np.einsum("tbg,tbi->gi", da, x),  # (1) summed over t and b
        "weight_hh": np.einsum("tbg,tbh->gh", da, h_prev),  # (1)
    }
    if peephole:
        da_i, da_f, _, da_o = np.split(da, 4, axis=2)  # each (T, B, H)
        grads["weight_ci"] = (da_i * c_prev).sum(axis=(0, 1))  # (2) a_i + w_ci ⊙ c_{t-1}
        grads["weight_cf"] = (da_f * c_prev).sum(axis=(0, 1))  # (3) a_f + w_cf ⊙ c_{t-1}
        grads["weight_co"] = (da_o * cs).sum(axis=(0, 1))  # (6) a_o + w_co ⊙ c_t
    return grads | bias_grads(params, da, da)  # (1) both biases add to a_t
