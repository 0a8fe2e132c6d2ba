"""Config dataclasses <-> JSON and <-> argparse flags, so the CLI and the API share one definition.

Each task has one frozen dataclass. Every field has a default and a one-line help string in its
`metadata["help"]`; `add_dataclass_arguments` turns the fields into `--flag`s and
`dataclass_from_args` builds the config back, so defaults live in exactly one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from rnnlab.errors import RnnlabError

T = TypeVar("T")


def field(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with its CLI help text kept next to its default."""
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build `cls` from a dict, naming any key the dataclass does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise RnnlabError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    return cls(**values)


def load_config(cls: type[T], path: str | Path) -> T:
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise RnnlabError(f"config file not found: {path}") from err
    except json.JSONDecodeError as err:
        raise RnnlabError(f"config file {path} is not valid JSON: {err}") from err
    return from_dict(cls, values)


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(python type, optional?) for annotations such as `int`, `str | None`, 'float'."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"Optional": typing.Optional})  # noqa: S307 - our own annotations
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, group: str = "") -> None:
    """Add one `--field-name` per dataclass field; defaults stay None so presets can fill them."""
    target = parser.add_argument_group(group or cls.__name__)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind, optional = _base_type(f.type)
        help_text = f.metadata.get("help", "")
        if f.default is not dataclasses.MISSING and "default" not in help_text:
            shown = "none" if f.default is None else f.metadata.get("shown", f.default)
            help_text += f" (default: {shown})"  # unless the help says it in words
        choices = f.metadata.get("choices")
        parse = f.metadata.get("parse")  # a text -> value function for fields such as tuples
        if parse is not None:
            target.add_argument(flag, dest=f.name, type=parse, default=None, help=help_text,
                                metavar=f.metadata.get("metavar", f.name.upper()))
        elif kind is bool:  # --x and --no-x, both listed in --help
            target.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            target.add_argument(
                flag, dest=f.name, type=kind, default=None, choices=choices,
                help=help_text, metavar=f.name.upper() if not choices else None,
            )


def dataclass_from_args(
    cls: type[T], args: argparse.Namespace, base: dict[str, Any] | None = None
) -> T:
    """Defaults, then `base` (a preset or --config), then the flags the user actually gave."""
    values: dict[str, Any] = dict(base or {})
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return from_dict(cls, values)
