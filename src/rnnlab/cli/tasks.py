"""The task modules of the CLI, and how `train` and `eval` reach them.

A task module `rnnlab.cli.<task>` (classify, tag, translate) has:

- `register(subparsers)`: its own commands (`predict`, `tag`, `translate` RUN_DIR ...);
- `register_train(tasks)`: its `rnnlab train <task>` parser;
- `add_eval_arguments(parser)` (optional): extra flags of `rnnlab eval` (e.g. `--beam`);
- `run_eval(args)`: `rnnlab eval RUN_DIR` for a run whose config.json says `"task": <task>`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType

TASK_MODULES = ("classify", "tag", "translate")


def available(names: Iterable[str]) -> list[str]:
    """The CLI modules that are installed (a module is absent only in a partial checkout)."""
    return [n for n in names if importlib.util.find_spec(f"rnnlab.cli.{n}") is not None]


def task_module(name: str) -> ModuleType:
    return importlib.import_module(f"rnnlab.cli.{name}")
