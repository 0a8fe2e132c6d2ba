"""Sentence classification on SST-2 / SST-5 (Kim 2014 split): the recurrent classifier and the
TextCNN baseline, trained in the same run on the same data, from random embeddings.

RNN: BiLSTM (embedding 300, 150 units each way) with additive attention pooling, dropout 0.5.
CNN: Kim's CNN-rand (widths 3,4,5 x 100 maps, dropout 0.5). Both: Adam(W) lr 1e-3 without
weight decay, batch 50, early stopping on dev accuracy (the best dev checkpoint is tested).
The script's defaults `--min-freq 1 --embedding-init 0` (torch's N(0, 1) embeddings) are those
of the first recorded runs; ClassifyConfig's own defaults, 2 and 0.25, came from the variant
run `--min-freq 2 --embedding-init 0.25 --name _init025_minfreq2`, which did better.

Usage: python benchmarks/classify_sst.py [--corpora sst2 sst5] [--models rnn cnn] [--epochs 15]
       [--patience 4] [--minutes 0] [--threads 1]
Writes benchmarks/results/classify_<corpus>.{json,md}; runs are kept in runs/bench-classify-*.
Running the models in separate invocations (`--models rnn`, then `--models cnn`, to keep each
run short) merges them into the same results file, each with its own command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.train import cross_validate, train_classify
from rnnlab.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "rnn": {"model": "rnn", "cell": "lstm", "bidirectional": True, "pooling": "attention"},
    "cnn": {"model": "cnn"},
}
# What the literature reports on the same test sets, for the table (no pretrained vectors
# unless said).
REFERENCE = {
    "sst2": "Kim 2014 CNN-rand 82.7 (trained on phrases too)",
    "sst5": "Kim 2014 CNN-rand 45.0; Tai et al. 2015 LSTM 46.4 (phrases, GloVe)",
    "mr": "Kim 2014 CNN-rand 76.1 (10-fold CV)",
}


def machine() -> dict[str, Any]:
    return {"threads": torch.get_num_threads(), "load_average": list(os.getloadavg()),
            "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def train_one(name: str, corpus: str, args: argparse.Namespace,
              **data: Any) -> dict[str, Any] | None:
    """Train one model (or one cross-validation) from scratch and return its summary; None
    when a cross-validation stopped at its time budget (rerun with --resume to go on)."""
    run_dir = Path("runs") / f"bench-classify-{corpus}{args.name}-{name}"
    resume = getattr(args, "resume", False) and run_dir.exists()
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    config = ClassifyConfig(corpus=corpus, **MODELS[name], min_freq=args.min_freq,
                            dropout=args.dropout, embedding_init=args.embedding_init, **data)
    train = TrainConfig(optimizer="adamw", lr=args.lr, weight_decay=0.0, clip=args.clip,
                        epochs=args.epochs, patience=args.patience, seed=args.seed,
                        minutes=args.minutes,
                        threads=args.threads, device="cpu", log_every=20)
    started = time.monotonic()
    if config.folds:
        summary = cross_validate(config, train, run_dir, resume=resume,
                                 show_progress=not args.quiet,
                                 budget_minutes=getattr(args, "budget", 0.0))
        if "stopped" in summary:
            print(f"{corpus} {name}: {summary['stopped']}", flush=True)
            return None
    else:
        summary = train_classify(config, train, run_dir, show_progress=not args.quiet)
    # Training time: for cross-validation the folds' own times (a run in parts included).
    summary["wall_seconds"] = summary["seconds"] if config.folds else round(
        time.monotonic() - started, 1)
    summary["config"] = {k: v for k, v in vars(config).items() if v is not None}
    summary["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    summary["machine"] = machine()
    print(f"{corpus} {name}: test accuracy {summary['test_accuracy']:.4f} "
          f"({summary['wall_seconds']:.0f} s)", flush=True)
    return summary


def write_results(corpus: str, results: dict[str, Any], std: bool = False,
                  variant: str = "") -> None:
    """Merge `results` into classify_<corpus><variant>.json and render its markdown table."""
    path = RESULTS / f"classify_{corpus}{variant}.json"
    if path.exists():  # models trained by an earlier invocation on the same data stay
        earlier = json.loads(path.read_text())
        for summary in earlier["models"].values():  # files that kept these once per file
            summary.setdefault("command", earlier.get("command"))
            summary.setdefault("machine", earlier.get("machine"))
        results = {**earlier["models"], **results}
    record = {"corpus": corpus, "reference": REFERENCE[corpus], "models": results}
    lines = [f"# Classification: {corpus}{variant}", "",
             "Trained from random embeddings, one torch thread on a shared 2-core CPU (the load "
             "average, measured when each model finished, counts the other jobs sharing it).",
             "", "| model | test accuracy | test macro-F1 | best dev accuracy | epochs | "
             "training time | load average |", "|---|---|---|---|---|---|---|"]
    for name, s in results.items():
        acc = f"{100 * s['test_accuracy']:.2f}"
        f1 = f"{100 * s['test_macro_f1']:.2f}"
        if std:
            acc += f" ± {100 * s['test_accuracy_std']:.2f}"
            f1 += f" ± {100 * s['test_macro_f1_std']:.2f}"
        dev = f"{100 * s['best']:.2f}" if s.get("best") is not None else "per fold"
        epochs = s.get("epochs_completed", "per fold")
        load = ", ".join(f"{x:.1f}" for x in s["machine"]["load_average"])
        lines.append(f"| {describe(name)} | {acc} | {f1} | {dev} | {epochs} | "
                     f"{s['wall_seconds'] / 60:.1f} min | {load} |")
    lines += ["", f"Reference: {REFERENCE[corpus]}.", "", "Commands and signatures:", ""]
    lines += [f"- {name}: `{s['command']}` — `{s['signature']}`" for name, s in results.items()]
    if any("--resume" in s["command"] for s in results.values()):
        lines += ["", "A `--resume` command continued (or re-read) the folds of an earlier "
                      "invocation with the same flags but no `--resume`: runs stay under 30 min."]
    lines.append("")
    save_record(f"classify_{corpus}{variant}", record, "\n".join(lines))


def describe(name: str) -> str:
    return ("BiLSTM 150 each way, attention pooling (rnnlab)" if name == "rnn"
            else "TextCNN 3,4,5x100 (Kim CNN-rand)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpora", nargs="+", default=["sst2"], choices=("sst2", "sst5"))
    p.add_argument("--models", nargs="+", default=["rnn", "cnn"], choices=tuple(MODELS))
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--minutes", type=float, default=0.0,
                   help="training-time budget per model (per fold for MR); 0: none")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-freq", type=int, default=1,
                   help="words seen fewer times in train become <unk>")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--embedding-init", type=float, default=0.0,
                   help="embeddings U(-a, a) (Kim: 0.25); 0: torch's N(0, 1)")
    p.add_argument("--name", default="",
                   help="suffix of the results files and run folders (a variant's own name)")
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: render the markdown again from the results JSON")
    return p


def main() -> None:
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    if args.report_only:
        for corpus in args.corpora:
            write_results(corpus, {}, variant=args.name)
        return
    for corpus in args.corpora:
        results = {name: train_one(name, corpus, args) for name in args.models}
        write_results(corpus, results, variant=args.name)


if __name__ == "__main__":
    main()
