"""`--model lstm` and `--model gru` as the lecture notes name models: by their cell.

`--model rnn` is the recurrent family with its `--cell` (default per task); a cell name given as
the model is the same thing spelled the notes' way, so `--model gru` = `--model rnn --cell gru`.
The saved config keeps the canonical spelling (`model: rnn`, `cell: gru`), so runs read back
alike whichever way they were asked for. The Elman cell stays `--model rnn --cell rnn`: `rnn`
alone already names the family (as in torch, where `nn.RNN` is the Elman layer but "RNN" the
kind of model).
"""

from __future__ import annotations

from typing import Any

from rnnlab.errors import RnnlabError
from rnnlab.nn.factory import CELLS

CELL_MODELS = tuple(cell for cell in CELLS if cell != "rnn")


def canonical_model(config: Any, default_cell: str) -> None:
    """Turn `model=<cell>` into `model="rnn"` with that cell, in place (configs are frozen
    dataclasses; a task whose recurrent model has one cell offers only that name). A different
    `--cell` given beside it is a contradiction."""
    if config.model not in CELL_MODELS:
        return
    cell = config.model
    given = getattr(config, "cell", default_cell)
    if given not in (default_cell, cell):
        raise RnnlabError(f"--model {cell} and --cell {given} disagree: give one of them")
    if hasattr(config, "cell"):
        object.__setattr__(config, "cell", cell)
    object.__setattr__(config, "model", "rnn")
