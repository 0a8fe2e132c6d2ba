"""`rnnlab info`: versions, threads, the device `--device auto` picks, and the corpora found."""

from __future__ import annotations

import argparse
import platform

import torch

from rnnlab import __version__
from rnnlab.device import resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="show versions, device and the corpora found")
    parser.add_argument("--data-dir", help="data directory (default: $RNNLAB_DATA, else "
                        "../shared/data beside the checkout)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rnnlab.data.registry import find_corpora, resolve_data_dir

    print(f"rnnlab {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(f"threads: {torch.get_num_threads()}")
    print(f"device (--device auto): {resolve_device('auto')}")
    data_dir = resolve_data_dir(args.data_dir)
    print(f"data directory: {data_dir if data_dir else '(none found)'}")
    for name, path in find_corpora(args.data_dir).items():
        print(f"  {name:16s} {path if path else '-- not found'}")
    return 0
