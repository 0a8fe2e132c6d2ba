"""Small tools for training recurrent models: truncated BPTT and gradient clipping."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

StateLike = Tensor | tuple | list | None


def detach_state(state: StateLike) -> StateLike:
    """Cut the graph behind a carried state, keeping its values (truncated BPTT).

    Stateful training feeds window k's final state into window k+1; without detaching,
    backward would run through every earlier window and memory would grow without bound.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def clip_grad_norm(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Rescale all gradients together so their global L2 norm is at most `max_norm`
    (Pascanu et al. 2013); returns the norm *before* clipping, so it can be logged.

    A thin, documented use of `torch.nn.utils.clip_grad_norm_`; `max_norm <= 0` only measures.
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm <= 0:
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
        )
        return float(norm)
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
