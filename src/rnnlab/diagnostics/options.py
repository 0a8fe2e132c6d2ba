"""Checks and flag parsers the diagnostics' configs share (the library validates; the CLI
only builds the configs from flags)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from rnnlab.errors import RnnlabError


def names(text: str) -> tuple[str, ...]:
    """`rnn,lstm` -> ("rnn", "lstm")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def integers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in names(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers like 10,20,50: {text!r}") from err


def check_cells(cells: Iterable[str]) -> None:
    from rnnlab.nn.factory import CELLS

    cells = list(cells)
    if not cells:
        raise RnnlabError("name at least one cell")
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise RnnlabError(f"unknown cell {unknown[0]!r}; choose from {', '.join(CELLS)}")


def check_positive(config: object, *fields: str) -> None:
    for name in fields:
        value = getattr(config, name)
        if not value > 0:
            need = "at least 1" if isinstance(value, int) else "positive"
            raise RnnlabError(f"--{name.replace('_', '-')} must be {need}, got {value}")
