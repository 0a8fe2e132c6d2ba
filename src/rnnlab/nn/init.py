"""Initialisation helpers for the recurrent layers and cells."""

from __future__ import annotations

import torch
from torch import nn


def orthogonal_recurrent_(module: nn.Module, gain: float = 1.0) -> None:
    """Orthogonal recurrent weights, one (H, H) block per gate (Saxe et al. 2014).

    An orthogonal W_hh keeps the norm of h through the linear part of each step, which delays
    vanishing and exploding gradients; initialising each gate's block separately keeps that
    true for every gate.
    """
    for name, param in module.named_parameters():
        if name.startswith("weight_hh"):
            hidden = param.shape[1]
            with torch.no_grad():
                for block in param.split(hidden, dim=0):
                    nn.init.orthogonal_(block, gain=gain)


def set_forget_bias_(module: nn.Module, value: float = 1.0) -> None:
    """Set the LSTM forget-gate bias so that b_if + b_hf = value (Gers et al. 2000;
    Jozefowicz et al. 2015): a cell starts by remembering, so gradients flow back far."""
    for name, param in module.named_parameters():
        if name.startswith(("bias_ih", "bias_hh")):
            hidden = param.shape[0] // 4
            with torch.no_grad():
                param[hidden : 2 * hidden] = value / 2
