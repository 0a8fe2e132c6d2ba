"""What many commands share: the `--device`, `--format` and `--threads` flags, reading input
lines, and printing a result dict as text or JSON (one place, so every command looks alike)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rnnlab.config import checked_type

DATA_DIR_HELP = ("the folder of the named corpora (default: $RNNLAB_DATA, else the user data "
                 "folder, else ../shared/data beside a source checkout; `rnnlab info` shows "
                 "where)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")


def add_format(parser: argparse.ArgumentParser, what: str = "the result") -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help=f"print {what} as text lines or as JSON")


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=checked_type(int, ge=0), default=0,
                        help="torch CPU threads (0: torch's choice)")


def set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)


def read_input(file: str | None, text: str | None = None) -> str:
    """`text` if given, else the file's content ('-' or None: stdin)."""
    from rnnlab.data.io import read_text

    if text is not None:
        return text
    return sys.stdin.read() if file in (None, "-") else read_text(file)


def format_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_result(result: Mapping[str, Any], fmt: str, skip: Iterable[str] = ()) -> None:
    """JSON: the whole result. Text: one `key: value` line per entry (floats to 4 places),
    leaving out the `skip` entries (tables the caller prints its own way)."""
    if fmt == "json":
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    hidden = set(skip)
    for key, value in result.items():
        if key not in hidden:
            print(f"{key}: {format_value(value)}")


def note_split(args: argparse.Namespace, result: Mapping[str, Any]) -> None:
    """Say which split `eval` chose when the user named none (on stderr: stdout stays data)."""
    if getattr(args, "split", None) is None and "split" in result:
        print(f"note: no --split given: evaluated on {result['split']}, the last split the "
              "corpus has", file=sys.stderr)
