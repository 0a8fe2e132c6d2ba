"""`rnnlab <command>`: parse, call the library, print. No logic lives here that the API lacks."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rnnlab import __version__
from rnnlab.errors import RnnlabError
from rnnlab.tasks.registry import TASKS

# Each module adds its subcommands with `register(subparsers)`; handlers take the parsed args.
# The tasks' own commands (sample, predict, tag, ...) come from their registry entries.
TASK_COMMAND_MODULES = tuple(dict.fromkeys(spec.cli for spec in TASKS.values() if spec.cli))
COMMAND_MODULES = ("rnnlab.cli.info", "rnnlab.cli.data", "rnnlab.cli.train",
                   "rnnlab.cli.evaluate", *TASK_COMMAND_MODULES, "rnnlab.cli.diagnose")


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
    """argparse with our help formatter; subcommand parsers inherit the class."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rnnlab",
        description="Recurrent neural networks for NLP: train, sample, score and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
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
        if args.debug:
            raise
        print(f"rnnlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `rnnlab sample ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
