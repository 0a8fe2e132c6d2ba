"""`rnnlab tag RUN_DIR`, `rnnlab train tag`, and `rnnlab eval` for tagging runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rnnlab.cli.common import add_device, note_split, print_result
from rnnlab.config import checked_type


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tag", help="tag tokenized sentences with a trained tagger (POS, NER)",
        description="Input: one whitespace-tokenized sentence a line, or with --conll a CoNLL "
                    "file (one word a line in columns, blank lines between sentences). Output "
                    "(--format): text: word/TAG, or for --conll input its own lines with the "
                    "predicted tag as a new last column; conll: one 'word TAG' line a word, a "
                    "blank line after each sentence; json: one object a sentence.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--file", help="input file (default or '-': stdin)")
    p.add_argument("--conll", action="store_true",
                   help="input format: CoNLL columns, one word a line, blank lines between "
                        "sentences (for CoNLL output use --format conll)")
    p.add_argument("--token-column", type=checked_type(int), default=0,
                   help="with --conll: the word's column (0-based, -1: last)")
    p.add_argument("--output-scheme", default="bio", choices=("bio", "bioes", "iob1"),
                   help="entity tag scheme of the output (POS tags are unaffected)")
    p.add_argument("--ensemble", nargs="+", metavar="RUN_DIR", default=[],
                   help="more runs of the same tags: choose the tags together (mean scores)")
    add_device(p)
    p.add_argument("--format", choices=("text", "conll", "json"), default="text",
                   help="output: word/TAG lines, CoNLL 'word TAG' lines, or JSON")
    p.set_defaults(handler=run_tag)


def _tagger(args: argparse.Namespace) -> Any:
    """The run of RUN_DIR, or with --ensemble that run and the others together."""
    from rnnlab.tasks.tag.run import TagEnsemble, TagRun

    if args.ensemble:
        return TagEnsemble([args.run_dir, *args.ensemble], args.device)
    return TagRun(args.run_dir, args.device)


def run_tag(args: argparse.Namespace) -> int:
    from rnnlab.data.io import read_text
    from rnnlab.errors import RnnlabError
    from rnnlab.tasks.tag.data import read_blocks
    tagger = _tagger(args)
    text = sys.stdin.read() if args.file in (None, "-") else read_text(args.file)
    source = args.file or "stdin"
    if args.conll:
        blocks = read_blocks(text)
        lines = text.splitlines()
        sentences = []
        for block in blocks:
            words = []
            for number, columns in block:
                if not -len(columns) <= args.token_column < len(columns):
                    raise RnnlabError(f"{source}:{number}: no column {args.token_column}")
                words.append(columns[args.token_column])
            sentences.append(words)
    else:
        sentences = [line.split() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise RnnlabError(f"nothing to tag: {source} has no words")
    tags = tagger.tag(sentences, args.output_scheme)
    for index, (words, sentence_tags) in enumerate(zip(sentences, tags, strict=True)):
        if args.format == "json":
            print(json.dumps({"words": words, "tags": sentence_tags}, ensure_ascii=False))
        elif args.format == "conll":
            for word, tag in zip(words, sentence_tags, strict=True):
                print(f"{word} {tag}")
            print()
        elif args.conll:
            for (number, _), tag in zip(blocks[index], sentence_tags, strict=True):
                raw = lines[number - 1].rstrip()
                print(f"{raw}{chr(9) if chr(9) in raw else ' '}{tag}")
            print()
        else:
            print(" ".join(f"{w}/{t}" for w, t in zip(words, sentence_tags, strict=True)))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    tagger = _tagger(args)
    result = tagger.evaluate(args.split, args.data_dir)
    note_split(args, result)
    if args.format == "json":
        print_result(result, "json")
        return 0
    report = result.pop("report", None)
    members = result.pop("members", [])
    member_key = next((key for key in result if key.startswith("member_")), None)
    member_scores = result.pop(member_key) if member_key else []
    print_result(result, "text")
    for member, value in zip(members, member_scores, strict=True):
        print(f"member {member}: {member_key.removeprefix('member_')} {value:.4f}")
    if report:
        print(report)
    return 0
