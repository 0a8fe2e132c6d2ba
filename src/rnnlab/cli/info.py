"""`rnnlab info`: versions, threads, the device `--device auto` picks, where corpora are looked
up, which are found, and how to get the others; under torchrun, the world of processes."""

from __future__ import annotations

import argparse
import platform
import socket

import torch

from rnnlab import __version__
from rnnlab.cli.common import DATA_DIR_HELP
from rnnlab.device import resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="show versions, device and the corpora found")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.set_defaults(handler=run)


def show_world() -> bool:
    """Under torchrun: join the group, and rank 0 prints every process's place (host, local
    rank, device, threads). False in the other processes, which print nothing else."""
    from rnnlab.training import distributed

    here = distributed.world()
    if here.size <= 1:
        return True
    device = distributed.init(resolve_device("auto"))
    try:
        places = distributed.gather_to_main(
            (here.rank, socket.gethostname(), here.local_rank, str(device),
             torch.get_num_threads()))
    finally:
        distributed.cleanup()
    if places is None:
        return False
    print(f"world: {here.size} processes (torchrun), backend {distributed.backend_for(device)}")
    for rank, host, local_rank, place, threads in places:
        print(f"  rank {rank}: host {host}, local rank {local_rank}, {place}, "
              f"{threads} thread(s)")
    return True


def run(args: argparse.Namespace) -> int:
    from rnnlab.data.registry import ENV_VAR, download_dir, find_corpora, get_corpus, search_dirs

    if not show_world():
        return 0
    print(f"rnnlab {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(f"threads: {torch.get_num_threads()}")
    print(f"device (--device auto): {resolve_device('auto')}")
    print("corpora are looked up in (first found wins):")
    for path, why in search_dirs(args.data_dir):
        print(f"  {path}  ({why}{'' if path.is_dir() else ', does not exist'})")
    print("corpora:")
    missing = []
    for name, path in find_corpora(args.data_dir).items():
        print(f"  {name:16s} {path if path else '-- not found'}")
        if path is None:
            missing.append(name)
    if missing:
        target = download_dir(args.data_dir)[0]
        known = [n for n in missing if get_corpus(n).sources]
        print(f"to get one: `rnnlab data download NAME` (writes to {target}), or put its files "
              f"in a folder NAME/ under --data-dir or ${ENV_VAR}; `rnnlab data list` names the "
              f"files{' (downloadable: ' + ', '.join(known) + ')' if known else ''}")
    return 0
