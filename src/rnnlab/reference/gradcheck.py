"""Finite differences: the check that the hand-written backward passes are right."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[], float], array: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """∂f/∂array by central differences, (f(a + ε) - f(a - ε)) / 2ε, one entry at a time.

    `f` takes no argument: it reads `array`, which is perturbed in place (and restored), so
    the same call checks a parameter, an input or an initial state. Central differences have
    error O(ε²), so in float64 with ε = 1e-6 they agree with an exact gradient to about 1e-9.
    """
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)  # views: writes reach array and grad
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        f_plus = f()
        flat[k] = original - eps
        f_minus = f()
        flat[k] = original
        flat_grad[k] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a - b‖ / max(‖a‖, ‖b‖): scale-free, and 0 when both are zero."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0
