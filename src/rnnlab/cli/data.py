"""`rnnlab data {list,download,verify}`: the named corpora and where they live."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import DATA_DIR_HELP


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="list, download or verify named corpora")
    actions = data.add_subparsers(dest="data_action", metavar="ACTION")
    listing = actions.add_parser("list", help="the named corpora and whether they are found")
    listing.add_argument("--data-dir", help=DATA_DIR_HELP)
    listing.set_defaults(handler=run_list)
    download = actions.add_parser("download", help="fetch a corpus with checksum verification")
    download.add_argument("name")
    download.add_argument("--data-dir", help="where to put it (default: $RNNLAB_DATA, else the "
                          "user data folder; never beside the checkout)")
    download.add_argument("--url", help="fetch from this base URL instead (a mirror)")
    download.set_defaults(handler=run_download)
    verify = actions.add_parser("verify", help="check a corpus's files against their sha256")
    verify.add_argument("name")
    verify.add_argument("--data-dir", help=DATA_DIR_HELP)
    verify.set_defaults(handler=run_verify)


def run_list(args: argparse.Namespace) -> int:
    from rnnlab.data.registry import find_corpora, get_corpus

    for name, path in find_corpora(args.data_dir).items():
        info = get_corpus(name)
        where = str(path) if path else f"not found (files: {', '.join(info.files)})"
        print(f"{name:16s} {info.level or '-':6s} {where}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from rnnlab.data.download import download

    for path in download(args.name, args.data_dir, url=args.url):
        print(path)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from rnnlab.data.registry import verify

    for file, status in verify(args.name, args.data_dir).items():
        print(f"{status}\t{file}")
    return 0
