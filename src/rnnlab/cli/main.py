"""`rnnlab <command>`: parse, call the library, print. No logic lives here that the API lacks."""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from rnnlab import __version__
from rnnlab.errors import RnnlabError
from rnnlab.tasks.registry import TASKS

# Each module adds its subcommands with `register(subparsers)`; handlers take the parsed args.
# The tasks' own commands (sample, predict, tag, ...) come from their registry entries.
TASK_COMMAND_MODULES = tuple(dict.fromkeys(spec.cli for spec in TASKS.values() if spec.cli))
COMMAND_MODULES = ("rnnlab.cli.info", "rnnlab.cli.data", "rnnlab.cli.train",
                   "rnnlab.cli.evaluate", *TASK_COMMAND_MODULES, "rnnlab.cli.diagnose",
                   "rnnlab.cli.serve", "rnnlab.cli.export", "rnnlab.cli.plot")
# Write errors that mean "no room" rather than a bug: disk full, file-size limit, quota.
WRITE_FAILURES = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class HelpFormatter(argparse.HelpFormatter):
    """Each flag's help ends with its default, once: help that already names its default in
    words ("default: the run's config") keeps it, and switches and flags without a default
    (None) show none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is argparse.SUPPRESS \
                or isinstance(action.default, bool) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with our help formatter, one-line errors (`rnnlab: error: ...`, exit 2, as for
    every other error) and `--debug` accepted at every level: `rnnlab train lm --debug` as well
    as `rnnlab --debug train lm`. Subcommand parsers inherit the class."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show tracebacks for errors")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # argparse drops a lone "--" from an option's value (`--length=--` would become []):
        # that is a missing value, said as such.
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "expected a value, got '--'")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rnnlab: error: {self.prog.removeprefix('rnnlab ')}: {message} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnnlab",
        description="Recurrent neural networks for NLP: train, sample, score and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except RnnlabError as err:
        if getattr(args, "debug", False):
            raise
        print(f"rnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        # Training saved its last completed step and says where (training/signals.py); the
        # exit status is the shell's 128 + signal number (130 for Ctrl-C, 143 for SIGTERM).
        print(f"rnnlab: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 128 + getattr(err, "signum", signal.SIGINT)
    except BrokenPipeError:
        # `rnnlab sample ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0
    except OSError as err:
        if getattr(args, "debug", False) or err.errno not in WRITE_FAILURES:
            raise
        # A full disk or a file-size limit: the checkpoint before it is intact (written to a
        # temporary name and renamed), so this is one line like any other error.
        print(f"rnnlab: error: cannot write: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
