"""What every ensemble of trained runs checks: two or more members that read the same
sentences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rnnlab.errors import RnnlabError

Run = TypeVar("Run")


def load_members(run_dirs: Sequence[str | Path], load: Callable[[str | Path], Run]) -> list[Run]:
    """Each run read back by `load`; an ensemble of fewer than two is refused."""
    if len(run_dirs) < 2:
        raise RnnlabError("an ensemble needs at least two run directories")
    return [load(run_dir) for run_dir in run_dirs]


def require_same_data(members: Sequence[tuple[Path, Any]], fields: Sequence[str],
                      split: str) -> None:
    """Raise unless every (run_dir, config) agrees with the first on each data-defining field,
    so that their `split` holds the same sentences in the same order."""
    first_dir, first = members[0]
    for run_dir, config in members[1:]:
        for name in fields:
            mine, theirs = getattr(config, name), getattr(first, name)
            if mine != theirs:
                raise RnnlabError(f"{run_dir} was trained on other data than {first_dir} "
                                  f"({name}: {mine!r} vs {theirs!r}): its {split} split is not "
                                  "the same")
