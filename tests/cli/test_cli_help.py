"""`--help` of every command: each flag explains itself once, with its default."""

from __future__ import annotations

import argparse

import pytest

from rnnlab.cli.main import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path: str = "rnnlab"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


PARSERS = dict(_parsers(build_parser()))


@pytest.mark.parametrize("path", list(PARSERS))
def test_every_flag_has_help_and_one_default(path):
    parser = PARSERS[path]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{path} {action.option_strings[0]} has no help"
    text = parser.format_help()
    for line in text.splitlines():
        assert line.count("(default") <= 1, f"{path}: {line}"
    assert "(default:" in text or len(parser._actions) <= 3 or "COMMAND" in text or \
        "TASK" in text or "ACTION" in text


def test_booleans_can_be_turned_off_and_presets_are_listed(capsys):
    with pytest.raises(SystemExit):
        main(["train", "classify", "--help"])
    out = capsys.readouterr().out
    assert "--lowercase, --no-lowercase" in out
    with pytest.raises(SystemExit):
        main(["train", "lm", "--help"])
    out = "".join(capsys.readouterr().out.split())
    from rnnlab.tasks.lm.presets import PRESETS

    assert ",".join(PRESETS) in out
