"""The hand-written BPTT of the NumPy reference agrees with central finite differences.

Every parameter, the input x and the initial state(s) are checked, for each cell variant, with
the loss L = Σ hs ⊙ R (+ Σ c_T ⊙ R_c for the LSTM, which exercises `dc_T`), R random.
"""

import numpy as np
import pytest

from rnnlab.reference import (
    gru_backward,
    gru_forward,
    init_params,
    lstm_backward,
    lstm_forward,
    numerical_gradient,
    relative_error,
    rnn_backward,
    rnn_forward,
)

T, B, I, H = 4, 3, 5, 4

# name -> (kind, options for forward and init_params)
CASES = {
    "rnn-tanh": ("rnn", {"nonlinearity": "tanh"}),
    "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm": ("lstm", {"peephole": False}),
    "lstm-peephole": ("lstm", {"peephole": True}),
    "gru-full": ("gru", {"variant": "full"}),
    "gru-minimal": ("gru", {"variant": "minimal"}),
}


def loss_and_grads(kind, options, arrays, params, targets):
    """L = Σ hs ⊙ R (+ Σ c_T ⊙ R_c) and its gradients from the reference's backward."""
    x, h0 = arrays["x"], arrays["h0"]
    if kind == "lstm":
        hs, cs, cache = lstm_forward(x, h0, arrays["c0"], params, **options)
        loss = np.sum(hs * targets["hs"]) + np.sum(cs[-1] * targets["c_T"])
        return loss, lstm_backward(targets["hs"], cache, dc_T=targets["c_T"])
    if kind == "rnn":
        hs, cache = rnn_forward(x, h0, params, **options)
        backward = rnn_backward
    else:
        hs, cache = gru_forward(x, h0, params, **options)
        backward = gru_backward
    return np.sum(hs * targets["hs"]), backward(targets["hs"], cache)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("name", list(CASES))
def test_backward_matches_finite_differences(name, bias):
    kind, options = CASES[name]
    rng = np.random.default_rng(0)
    shape_options = {k: v for k, v in options.items() if k != "nonlinearity"}
    params = init_params(kind, I, H, rng, bias=bias, **shape_options)
    # Larger than the init range so that the gates leave their linear region.
    params = {k: 3.0 * v for k, v in params.items()}
    arrays = {"x": rng.standard_normal((T, B, I)), "h0": rng.standard_normal((B, H))}
    if kind == "lstm":
        arrays["c0"] = rng.standard_normal((B, H))
    targets = {"hs": rng.standard_normal((T, B, H)), "c_T": rng.standard_normal((B, H))}

    _, grads = loss_and_grads(kind, options, arrays, params, targets)
    assert set(grads) == set(params) | set(arrays)

    def loss():
        return loss_and_grads(kind, options, arrays, params, targets)[0]

    for key, array in [*params.items(), *arrays.items()]:
        assert grads[key].shape == array.shape, key
        numeric = numerical_gradient(loss, array)
        assert relative_error(grads[key], numeric) < 1e-6, key


def test_numerical_gradient_of_a_known_function():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    numeric = numerical_gradient(lambda: float(np.sum(a**3)), a)
    assert relative_error(numeric, 3 * a**2) < 1e-9
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
