"""Every numeric or choice option of every command, driven through hypothesis-drawn bad values:
exit status 2 and one line on stderr, never a traceback, never silent garbage."""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import subprocess
import sys

import pytest
from fault_tools import one_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli.main import build_parser, main

COUNTS = {"bad values tried": 0, "tracebacks": 0}


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, positional placeholders, option action) for every checked option."""
    positionals = [a for a in parser._actions
                   if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and (hasattr(action.type, "rules") or action.choices):
            yield path, ["x"] * len(positionals), action


OPTIONS = list(_options(build_parser()))


def _bad_values(action: argparse.Action) -> st.SearchStrategy[str]:
    """Values the option's own rules refuse: out of bounds, not finite, not a number at all,
    or not one of the choices."""
    garbage = st.sampled_from(["abc", "", "1e", "--", "0x1g"])
    if action.choices and not hasattr(action.type, "rules"):
        return st.text(min_size=1, max_size=8).filter(lambda t: t not in action.choices
                                                      and not t.startswith("-")) | garbage
    kind, rules = action.type.kind, action.type.rules
    bad = [garbage]
    if kind is float:
        bad.append(st.sampled_from(["nan", "inf", "-inf", "NaN"]))
    if kind is int:
        bad.append(st.sampled_from(["1.5", "2e3"]))
    number = st.integers if kind is int else st.floats
    for key, bound in rules.items():
        if key == "ge":
            bad.append(number(max_value=bound - 1) if kind is int else
                       st.floats(max_value=bound, exclude_max=True, allow_nan=False,
                                 allow_infinity=False))
        elif key == "gt":
            bad.append(number(max_value=bound) if kind is int else
                       st.floats(max_value=bound, allow_nan=False, allow_infinity=False))
        elif key == "le":
            bad.append(number(min_value=bound + 1) if kind is int else
                       st.floats(min_value=bound, exclude_min=True, allow_nan=False,
                                 allow_infinity=False))
        elif key == "lt":
            bad.append(number(min_value=bound) if kind is int else
                       st.floats(min_value=bound, allow_nan=False, allow_infinity=False))
    return st.one_of(*bad).map(str)


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


def test_every_checked_option_is_found():
    flags = {a.option_strings[0] for _, _, a in OPTIONS}
    for flag in ("--hidden", "--layers", "--dropout", "--lr", "--log-every", "--threads",
                 "--folds", "--max-len", "--temperature", "--top-k", "--top-p", "--max-steps",
                 "--minutes", "--epochs", "--beam", "--cell"):
        assert flag in flags, flag


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_bad_values_are_one_line_and_exit_2(data):
    path, positionals, action = data.draw(st.sampled_from(OPTIONS))
    value = data.draw(_bad_values(action))
    if action.type is not None and hasattr(action.type, "rules"):
        with contextlib.suppress(argparse.ArgumentTypeError, ValueError):
            parsed = action.type(value)
            pytest.fail(f"{action.option_strings[0]} accepted {value!r} as {parsed}")
    argv = [*path, *positionals, f"{action.option_strings[0]}={value}"]
    code, err = _run(argv)
    COUNTS["bad values tried"] += 1
    COUNTS["tracebacks"] += "Traceback" in err
    assert code == 2 and one_line(err) and err.startswith("rnnlab: error:"), (argv, code, err)


@pytest.mark.parametrize("argv", [
    ["train", "classify", "--folds", "1"],          # refused by the config, not by argparse
    ["train", "lm", "--run-dir", __file__],          # a file, not a folder
    ["train", "lm", "--debug", "--hidden", "0"],    # --debug after the subcommand is accepted
])
def test_bad_values_past_argparse(argv):
    code, err = _run(argv)
    assert code == 2 and one_line(err), err


def test_bad_values_in_a_real_process():
    """A sample through the console entry point, as a shell sees it."""
    for argv in (["sample", "run", "--temperature", "nan"], ["train", "lm", "--epochs", "0"]):
        done = subprocess.run([sys.executable, "-m", "rnnlab.cli.main", *argv],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and one_line(done.stderr), done.stderr


def test_report_counts():
    if COUNTS["bad values tried"]:
        print(f"\nbad values: {COUNTS}")
    assert COUNTS["tracebacks"] == 0
    assert not math.isnan(0.0)
