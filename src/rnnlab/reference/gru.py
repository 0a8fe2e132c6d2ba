"""GRU in NumPy, full and minimal: forward and BPTT, to read beside `nn.cells.GRUCell`.

variant="full", torch's gate order (r, z, n) and torch's "reset after" formula:
    (1) p_t = W_ih x_t + b_ih = [p_r p_z p_n]         input projections  (B, 3H)
    (2) q_t = W_hh h_{t-1} + b_hh = [q_r q_z q_n]     recurrent projections  (B, 3H)
    (3) r_t = σ(p_r + q_r)                            reset gate
    (4) z_t = σ(p_z + q_z)                            update gate
    (5) n_t = tanh(p_n + r_t ⊙ q_n)                   candidate
    (6) h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

variant="minimal" (update gate only), gate order (z, n): (1), (2), (4), (6) as above and
    (5') n_t = tanh(p_n + q_n)

The two projections are kept apart because r multiplies only the recurrent part of n, so
∂L/∂p and ∂L/∂q differ in the n block. Backward carries dh_next = ∂L/∂h_t from step t+1,
which reaches h_t through (2) and through the z_t ⊙ h_{t-1} term of (6).
"""

from __future__ import annotations

import numpy as np

from rnnlab.reference.common import Cache, Params, affine, bias_grads, sigmoid


def gru_forward(
    x: np.ndarray, h0: np.ndarray, params: Params, variant: str = "full"
) -> tuple[np.ndarray, Cache]:
    """Run the GRU over x (T, B, I) from h0 (B, H); return hs (T, B, H) and the backward cache."""
    if variant not in ("full", "minimal"):
        raise ValueError(f"GRU variant must be 'full' or 'minimal', got {variant!r}")
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params.get("bias_ih"), params.get("bias_hh")
    T, B = x.shape[:2]
    H = w_hh.shape[1]
    dtype = np.result_type(x, h0, w_ih)
    r, z, n, q_n, hs = (np.empty((T, B, H), dtype=dtype) for _ in range(5))
    h = h0
    for t in range(T):
        p = affine(x[t], w_ih, b_ih)  # (1)  (B, G*H)
        q = affine(h, w_hh, b_hh)  # (2)  (B, G*H)
        if variant == "full":
            p_r, p_z, p_n = np.split(p, 3, axis=1)  # each (B, H)
            q_r, q_z, q_n[t] = np.split(q, 3, axis=1)
            r[t] = sigmoid(p_r + q_r)  # (3)
            z[t] = sigmoid(p_z + q_z)  # (4)
            n[t] = np.tanh(p_n + r[t] * q_n[t])  # (5)
        else:
            p_z, p_n = np.split(p, 2, axis=1)
            q_z, q_n[t] = np.split(q, 2, axis=1)
            z[t] = sigmoid(p_z + q_z)  # (4)
            n[t] = np.tanh(p_n + q_n[t])  # (5')
        h = (1.0 - z[t]) * n[t] + z[t] * h  # (6)
        hs[t] = h
    cache = {
        "x": x, "h0": h0, "hs": hs, "r": r, "z": z, "n": n, "q_n": q_n,
        "params": params, "variant": variant,
    }
    return hs, cache


def gru_backward(dhs: np.ndarray, cache: Cache) -> Params:
    """Gradients of a loss L given dhs = ∂L/∂hs (T, B, H), for "x", "h0" and every parameter."""
    x, h0, hs, params = cache["x"], cache["h0"], cache["hs"], cache["params"]
    r, z, n, q_n = cache["r"], cache["z"], cache["n"], cache["q_n"]
    full = cache["variant"] == "full"
    w_ih, w_hh = params["weight_ih"], params["weight_hh"]
    h_prev = np.concatenate([h0[None], hs[:-1]])  # h_{t-1} for every t  (T, B, H)
    T, B, H = hs.shape
    G = 3 if full else 2
    dp = np.empty((T, B, G * H), dtype=hs.dtype)  # ∂L/∂p_t  (T, B, G*H)
    dq = np.empty((T, B, G * H), dtype=hs.dtype)  # ∂L/∂q_t  (T, B, G*H)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        dh = dhs[t] + dh_next  # h_t feeds the loss and step t+1
        dn = dh * (1.0 - z[t])  # (6) h = (1 - z) ⊙ n + z ⊙ h_prev
        dz = dh * (h_prev[t] - n[t])  # (6)
        dh_prev = dh * z[t]  # (6) the direct path to h_{t-1}
        da_n = dn * (1.0 - n[t] ** 2)  # (5) / (5') tanh' = 1 - tanh²
        da_z = dz * z[t] * (1.0 - z[t])  # (4) σ' = σ(1 - σ)
        if full:
            dr = da_n * q_n[t]  # (5) p_n + r ⊙ q_n
            da_r = dr * r[t] * (1.0 - r[t])  # (3)
            dp[t] = np.concatenate([da_r, da_z, da_n], axis=1)  # (3) (4) (5) gate order r, z, n
            dq[t] = np.concatenate([da_r, da_z, da_n * r[t]], axis=1)  # (5) q_n is scaled by r
        else:
            dp[t] = dq[t] = np.concatenate([da_z, da_n], axis=1)  # (4) (5') gate order z, n
        dh_next = dh_prev + dq[t] @ w_hh  # (2) q_t = W_hh h_{t-1} + b_hh
    grads = {
        "x": dp @ w_ih,  # (1) p_t = W_ih x_t + b_ih  (T, B, I)
        "h0": dh_next,
        "weight_ih": np.einsum("tbg,tbi->gi", dp, x),  # (1) summed over t and b
        "weight_hh": np.einsum("tbg,tbh->gh", dq, h_prev),  # (2)
    }
    return grads | bias_grads(params, dp, dq)  # (1) b_ih adds to p_t, (2) b_hh to q_t
