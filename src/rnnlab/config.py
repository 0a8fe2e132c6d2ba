"""Config dataclasses <-> JSON and <-> argparse flags, so the CLI and the API share one definition.

Each task has one frozen dataclass. Every field has a default and a one-line help string in its
`metadata["help"]`; `add_dataclass_arguments` turns the fields into `--flag`s and
`dataclass_from_args` builds the config back, so defaults live in exactly one place.

Valid values live there too: a field's `ge`/`gt`/`le`/`lt` bounds and `choices` are checked by
`check_fields` (each config's `__post_init__` calls it, so the Python API and JSON loading share
it) and by the argparse type of its flag (so the CLI refuses a bad value with one line before
doing any work). Floats must also be finite: `--lr nan` is refused like `--lr -1`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from rnnlab.errors import RnnlabError

T = TypeVar("T")


BOUNDS = ("ge", "gt", "le", "lt")
_WORDS = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}


def field(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A dataclass field with its CLI help text and its valid values kept next to its default:
    `choices=(...)`, and bounds `ge`, `gt`, `le`, `lt` (>=, >, <=, <) for numbers."""
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def value_problem(value: Any, kind: type, *, optional: bool = False,
                  choices: Any = None, **bounds: Any) -> str:
    """Why `value` is not a valid `kind` within `bounds` and `choices` ("" when it is)."""
    if value is None:
        return "" if optional else "must be given"
    if kind is bool:
        return "" if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be an integer, got {value!r}"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
    if kind is str and not isinstance(value, str):
        return f"must be a string, got {value!r}"
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(map(str, choices))}, got {value!r}"
    tests = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b,
             "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
    failed = [f"{_WORDS[k]} {b}" for k, b in bounds.items()
              if b is not None and not tests[k](value, b)]
    if failed:
        wanted = " and ".join(f"{_WORDS[k]} {b}" for k, b in bounds.items() if b is not None)
        return f"must be {wanted}, got {value}"
    return ""


def check_value(name: str, value: Any, kind: type, **rules: Any) -> None:
    """Raise a one-line RnnlabError naming `name` when `value` breaks `rules` (see
    `value_problem`); for library functions whose arguments are not config fields."""
    problem = value_problem(value, kind, **rules)
    if problem:
        raise RnnlabError(f"{name} {problem}")


def _rules(f: dataclasses.Field) -> dict[str, Any]:
    return {k: f.metadata[k] for k in (*BOUNDS, "choices") if f.metadata.get(k) is not None}


def check_fields(config: Any) -> None:
    """Check every field of a config dataclass against its type, bounds and choices. A path
    given for a text field (a file name) is kept as its text, so configs stay plain JSON."""
    for f in dataclasses.fields(config):
        kind, optional = _base_type(f.type)
        if kind is str and isinstance(getattr(config, f.name), os.PathLike):
            object.__setattr__(config, f.name, os.fspath(getattr(config, f.name)))
        check_value("--" + f.name.replace("_", "-"), getattr(config, f.name), kind,
                    optional=optional, **_rules(f))


def checked_type(kind: type, **rules: Any) -> Any:
    """An argparse `type=` that parses `kind` and applies `rules`, so a bad flag value is one
    line from argparse (and `nan`/`inf` are refused for floats)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        problem = value_problem(value, kind, **rules)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    parse.kind, parse.rules = kind, rules  # type: ignore[attr-defined]  # read by the tests
    return parse


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
    config = cls(**values)
    check_fields(config)  # also for classes without a __post_init__ that calls it
    return config


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
        bounds = {k: v for k, v in _rules(f).items() if k in BOUNDS}
        if parse is not None:
            target.add_argument(flag, dest=f.name, type=parse, default=None, help=help_text,
                                metavar=f.metadata.get("metavar", f.name.upper()))
        elif kind is bool:  # --x and --no-x, both listed in --help
            target.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parse = checked_type(kind, **bounds) if kind in (int, float) else kind
            target.add_argument(
                flag, dest=f.name, type=parse, default=None, choices=choices,
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
