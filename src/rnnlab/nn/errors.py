"""Exceptions of the recurrent layers: rnnlab's one-line messages in torch.nn's exception classes.

Code written against `torch.nn.LSTM` catches `RuntimeError` for a wrong state or feature size and
`ValueError` for a wrong input dtype; the CLI turns `RnnlabError` into `rnnlab: error: ...`. These
classes are both, so a drop-in replacement breaks neither kind of caller. Shape errors are also a
`ValueError`, which is what rnnlab raised for them before.
"""

from __future__ import annotations

from rnnlab.errors import RnnlabError


class RecurrentValueError(RnnlabError, ValueError):
    """Bad argument or input where torch.nn raises ValueError (dtype, dimensions, options)."""


class RecurrentShapeError(RnnlabError, RuntimeError, ValueError):
    """Wrong state or feature size, or zero time steps, where torch.nn raises RuntimeError."""
