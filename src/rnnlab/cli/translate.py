"""`rnnlab translate RUN_DIR`, `rnnlab train translate`, and `rnnlab eval` for translation runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnlab.cli.common import add_device, add_format, note_split, print_result
from rnnlab.config import checked_type


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "translate", help="translate sentences with a trained encoder-decoder",
        description="Reads one source sentence a line (a file or stdin), writes one translation "
                    "a line (lower-cased, detokenized).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--file", help="input file (default or '-': stdin)")
    p.add_argument("--beam", type=checked_type(int, ge=1), default=None,
                   help="beam size (1: greedy; default: the "
                   "run's config)")
    p.add_argument("--alpha", type=checked_type(float, ge=0.0), default=None,
                   help="GNMT length-penalty exponent (default: the run's config)")
    p.add_argument("--attention-plot", metavar="DIR",
                   help="write an alignment heatmap PNG per sentence into DIR (conv, "
                        "transformer: the chosen layer's heads averaged, and one per head)")
    p.add_argument("--attention-layer", type=checked_type(int, ge=1), default=None, metavar="N",
                   help="conv, transformer: the decoder layer whose cross-attention is drawn "
                        "(1-based; default: the last)")
    p.add_argument("--n-best", type=checked_type(int, ge=1), default=1, metavar="N",
                   help="the N best translations of the beam (at most --beam): text output "
                        "writes N lines a sentence, best first, as OpenNMT's -n_best; JSON "
                        "lists them with their log-probabilities")
    add_device(p)
    add_format(p)
    p.set_defaults(handler=run_translate)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """`--beam` and `--alpha` for translation runs (unless another task added them already)."""
    if "--beam" not in parser._option_string_actions:
        parser.add_argument("--beam", type=checked_type(int, ge=1), default=None,
                            help="translation: beam size (default: the run's config)")
    if "--alpha" not in parser._option_string_actions:
        parser.add_argument("--alpha", type=checked_type(float, ge=0.0), default=None,
                            help="translation: GNMT length-penalty exponent")


def run_translate(args: argparse.Namespace) -> int:
    from rnnlab.data.io import read_text
    from rnnlab.errors import RnnlabError
    from rnnlab.tasks.translate.run import TranslateRun

    run = TranslateRun(args.run_dir, args.device)
    text = sys.stdin.read() if args.file in (None, "-") else read_text(args.file)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise RnnlabError(f"nothing to translate: {args.file or 'stdin'} is empty")
    plots = Path(args.attention_plot) if args.attention_plot else None
    layer = args.attention_layer
    if plots is not None and layer is None and run.config.model != "rnn":
        layer = run.config.layers  # per-head weights of the last layer
    results = run.translate(lines, args.beam, args.alpha, attention_layer=layer,
                            n_best=args.n_best)
    if plots is not None:
        from rnnlab.plots import plot_attention

        plots.mkdir(parents=True, exist_ok=True)
    for index, result in enumerate(results, start=1):
        if plots is not None and result.weights is not None:
            plot_attention(result.weights, result.source_tokens, result.target_tokens,
                           plots / f"attention-{index:04d}.png")
            heads = result.head_weights
            if heads is not None and len(heads) > 1:
                for head, weights in enumerate(heads, start=1):
                    plot_attention(weights, result.source_tokens, result.target_tokens,
                                   plots / f"attention-{index:04d}-head{head}.png",
                                   title=f"head {head}")
        ranked = [(result.text, result.score), *result.alternatives]
        if args.format == "json":
            print(json.dumps({"source": result.source, "translation": result.text,
                              "score": result.score,
                              "n_best": [{"translation": text, "score": score}
                                         for text, score in ranked]}, ensure_ascii=False))
        else:
            for text, _ in ranked:
                print(text)
    if plots is not None and results[0].weights is None:
        print("note: this model has no attention (--attention none): no plots written",
              file=sys.stderr)
    elif plots is not None:
        print(f"wrote {len(results)} attention plots to {plots} (attention-0001.png to "
              f"attention-{len(results):04d}.png)", file=sys.stderr)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from rnnlab.tasks.translate.run import TranslateRun

    run = TranslateRun(args.run_dir, args.device)
    result = run.evaluate(args.split, getattr(args, "beam", None), getattr(args, "alpha", None),
                          data_dir=args.data_dir)
    result.pop("hypotheses")
    note_split(args, result)
    print_result(result, args.format)
    return 0
