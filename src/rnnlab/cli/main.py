"""`rnnlab <command>`: parse, call the library, print. No logic lives here that the API lacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rnnlab import __version__
from rnnlab.cli.tasks import TASK_MODULES, available
from rnnlab.errors import RnnlabError

# Each module adds its subcommands with `register(subparsers)`; handlers take the parsed args.
COMMAND_MODULES = (("info", "data", "train", "generate", "evaluate") + TASK_MODULES
                   + ("diagnose", "export"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab",
        description="Recurrent neural networks for NLP: train, sample, score and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in available(COMMAND_MODULES):
        module = __import__(f"rnnlab.cli.{name}", fromlist=["register"])
        module.register(subparsers)
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
