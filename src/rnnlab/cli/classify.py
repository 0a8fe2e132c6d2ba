"""`rnnlab train classify`, `rnnlab predict RUN_DIR` and `rnnlab eval` for classifier runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from rnnlab.cli.common import add_device, add_format, note_split, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="label texts with a trained classifier (probabilities, attention)")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    parser.add_argument("--file", help="classify each non-empty line of this file ('-': stdin)")
    parser.add_argument("--explain", action="store_true",
                        help="print each word with its attention weight")
    parser.add_argument("--explain-html", metavar="FILE", help="write an HTML heat strip")
    parser.add_argument("--explain-png", metavar="FILE", help="write a PNG heat strip")
    parser.add_argument("--ensemble", nargs="+", metavar="RUN_DIR", default=[],
                        help="more runs of the same labels: decide by the mean probabilities")
    add_device(parser)
    add_format(parser)
    parser.set_defaults(handler=run_predict)


def _texts(args: argparse.Namespace) -> list[str]:
    from rnnlab.data.io import read_text
    from rnnlab.errors import RnnlabError

    texts = list(args.texts)
    if args.file:
        content = sys.stdin.read() if args.file == "-" else read_text(args.file)
        texts += [line for line in content.splitlines() if line.strip()]
    if not texts:
        raise RnnlabError("nothing to classify: give TEXT arguments or --file")
    return texts


def run_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnnlab.errors import RnnlabError
    from rnnlab.tasks.classify.explain import explain_html, explain_terminal
    from rnnlab.tasks.classify.run import ClassifyEnsemble, ClassifyRun

    explaining = args.explain or args.explain_html or args.explain_png
    if args.ensemble:
        if explaining:
            raise RnnlabError("--explain shows one model's attention: it cannot be used with "
                              "--ensemble")
        run = ClassifyEnsemble([args.run_dir, *args.ensemble], args.device)
    else:
        run = ClassifyRun(args.run_dir, args.device)
    predictions = run.predict(_texts(args))
    if predictions[0].sentences is not None:  # a document model: both levels of attention
        return _print_documents(args, predictions)
    if explaining and predictions[0].attention is None:
        raise RnnlabError(f"--explain needs a model with attention pooling; {args.run_dir} "
                          f"uses {run.config.model} / pooling {run.config.pooling}")
    _print_predictions(args, predictions, explain_terminal)
    if args.explain_html:
        Path(args.explain_html).write_text(explain_html(predictions), encoding="utf-8")
        print(f"wrote {args.explain_html} (attention heat strips, HTML)", file=sys.stderr)
    if args.explain_png:
        from rnnlab.plots import plot_attention_strip

        plot_attention_strip([(p.tokens, p.attention, p.label) for p in predictions],
                             Path(args.explain_png))
        print(f"wrote {args.explain_png} (attention heat strips, PNG)", file=sys.stderr)
    return 0


def _print_predictions(args: argparse.Namespace, predictions: list,
                       explain: Callable[..., str]) -> None:
    """One line a prediction: JSON, the `explain` rendering, or label, probabilities, text."""
    for pred in predictions:
        if args.format == "json":
            print(json.dumps(pred.to_json(), ensure_ascii=False))
        elif args.explain:
            print(explain(pred, colour=sys.stdout.isatty()))
        else:
            probs = " ".join(f"{label}={p:.3f}" for label, p in pred.probabilities.items())
            print(f"{pred.label}\t{probs}\t{pred.text}")


def _print_documents(args: argparse.Namespace, predictions: list) -> int:
    from pathlib import Path

    from rnnlab.tasks.classify.explain import explain_document_html, explain_document_terminal

    _print_predictions(args, predictions, explain_document_terminal)
    if args.explain_html:
        Path(args.explain_html).write_text(explain_document_html(predictions), encoding="utf-8")
    if args.explain_png:
        from rnnlab.plots import plot_document_attention

        plot_document_attention([(p.sentences, p.sentence_attention, p.word_attention, p.label)
                                 for p in predictions], Path(args.explain_png))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from rnnlab.tasks.classify.run import ClassifyEnsemble, evaluate_run

    if args.ensemble:
        ensemble = ClassifyEnsemble([args.run_dir, *args.ensemble], args.device)
        result = ensemble.evaluate(args.split, args.data_dir)
    else:
        result = evaluate_run(args.run_dir, args.split, args.data_dir, args.device)
    note_split(args, result)
    print_result(result, args.format, skip=("confusion", "folds", "members", "member_accuracy"))
    if args.format == "json":
        return 0
    for member, member_accuracy in zip(result.get("members", []),
                                       result.get("member_accuracy", []), strict=True):
        print(f"member {member}: accuracy {member_accuracy:.4f}")
    for fold in result.get("folds", []):
        print(f"fold {fold['fold']}: accuracy {fold['test_accuracy']:.4f} "
              f"macro-F1 {fold['test_macro_f1']:.4f}")
    return 0
