"""SST-2 model selection on dev: BiLSTM classifiers over a small grid (pooling x seed), each
trained from scratch, the one with the best dev accuracy tested (ties: the earlier in the grid).

The test accuracy of every grid point is written too, with their mean and spread, so the
selected figure can be read against what a single untuned run gives. No pretrained vectors.

Usage: python benchmarks/classify_sst2_select.py [--poolings attention max mean]
       [--seeds 1 2 3] [--threads 1]
Writes benchmarks/results/classify_sst2_select.{json,md}; runs in runs/bench-sst2-select/.
Also scores all grid points as one ensemble (mean class probabilities), beside the selection.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rnnlab.tasks.classify.config import ClassifyConfig
from rnnlab.tasks.classify.run import ClassifyEnsemble
from rnnlab.tasks.classify.train import train_classify
from rnnlab.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RUNS = Path("runs") / "bench-sst2-select"


def train_point(pooling: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    run_dir = RUNS / f"{pooling}-seed{seed}{args.name}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config = ClassifyConfig(corpus="sst2", model=args.model, cell=args.cell, bidirectional=True,
                            pooling=pooling, word_dropout=args.word_dropout, hidden=args.hidden,
                            embedding_size=args.embedding_size, dropout=args.dropout,
                            batch_size=args.batch_size)
    train = TrainConfig(optimizer="adamw", lr=args.lr, weight_decay=args.weight_decay, clip=5.0,
                        ema=args.ema,
                        epochs=args.epochs, patience=args.patience, seed=seed,
                        threads=args.threads, device="cpu", log_every=20)
    started = time.monotonic()
    summary = train_classify(config, train, run_dir, show_progress=False)
    point = {"pooling": pooling, "seed": seed, "dev_accuracy": summary["best"],
             "test_accuracy": summary["test_accuracy"], "test_macro_f1": summary["test_macro_f1"],
             "epochs": summary["epochs_completed"], "minutes": (time.monotonic() - started) / 60,
             "signature": summary["signature"], "run_dir": str(run_dir),
             "load_average": list(os.getloadavg())}
    print(f"{pooling:9s} seed {seed}: dev {100 * point['dev_accuracy']:.2f} "
          f"test {100 * point['test_accuracy']:.2f} ({point['minutes']:.1f} min)", flush=True)
    return point


DEFAULT_MODEL = {"model": "rnn", "cell": "lstm", "hidden": 150, "embedding_size": 300,
                 "dropout": 0.5, "batch_size": 50, "lr": 1e-3, "weight_decay": 0.0}


def describe(model: dict[str, Any]) -> str:
    network = (f"Bi{model['cell'].upper()} {model['hidden']} each way"
               if model.get("model", "rnn") == "rnn" else "TextCNN 3,4,5 x 100 maps")
    text = (f"{network}, embeddings {model['embedding_size']}, dropout {model['dropout']}, "
            f"AdamW {model['lr']:g}")
    if model["weight_decay"]:
        text += f" (weight decay {model['weight_decay']:g})"
    return text + f", batch {model['batch_size']}"


def ensemble_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """All grid points deciding together (mean class probabilities): a rule fixed in advance,
    so no choice is made on test."""
    ensemble = ClassifyEnsemble([p["run_dir"] for p in points], device="cpu")
    dev, test = ensemble.evaluate("valid"), ensemble.evaluate("test")
    print(f"ensemble of {len(points)}: dev {100 * dev['accuracy']:.2f} "
          f"test {100 * test['accuracy']:.2f}", flush=True)
    return {"members": len(points), "dev_accuracy": dev["accuracy"],
            "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
            "signature": test["signature"]}


def markdown(record: dict[str, Any]) -> str:
    chosen, points = record["selected"], record["points"]
    tests = [100 * p["test_accuracy"] for p in points]
    model = {**DEFAULT_MODEL, **record.get("model", {})}
    lines = [
        f"# SST-2: {'BiLSTM' if model['model'] == 'rnn' else 'TextCNN'} chosen on dev", "",
        f"Command: `{record['command']}`  ",
        f"torch {record['torch']}, {record['threads']} thread(s) on a shared 2-core CPU; "
        "embeddings from scratch (no pretrained vectors); "
        f"{describe(model)}, embeddings U(-0.25, 0.25), "
        "min-freq 2, early stopping on dev accuracy"
        + (f"; weights averaged (EMA, decay {record['ema']}) for evaluation and the kept "
           "checkpoint" if record.get("ema") else "")
        + (f"; word dropout {record['word_dropout']} while training"
           if record.get("word_dropout") else "") + ".", "",
        f"**Selected on dev: {chosen['pooling']} pooling, seed {chosen['seed']}: test accuracy "
        f"{100 * chosen['test_accuracy']:.2f}** (dev {100 * chosen['dev_accuracy']:.2f}). "
        f"All {len(points)} grid points: test {statistics.fmean(tests):.2f} ± "
        f"{statistics.stdev(tests) if len(tests) > 1 else 0.0:.2f} (mean ± sd), "
        f"min {min(tests):.2f}, max {max(tests):.2f}."
        + (f" **All {ens['members']} deciding together (mean class probabilities, "
           f"`rnnlab eval RUN_DIR --ensemble ...`): test accuracy {100 * ens['test_accuracy']:.2f}"
           f"** (dev {100 * ens['dev_accuracy']:.2f}, test macro-F1 "
           f"{100 * ens['test_macro_f1']:.2f})." if (ens := record.get("ensemble")) else ""),
        "",
        "| pooling | seed | dev accuracy | test accuracy | test macro-F1 | epochs | minutes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        mark = " (selected)" if p == chosen else ""
        lines.append(f"| {p['pooling']}{mark} | {p['seed']} | {100 * p['dev_accuracy']:.2f} | "
                     f"{100 * p['test_accuracy']:.2f} | {100 * p['test_macro_f1']:.2f} | "
                     f"{p['epochs']} | {p['minutes']:.1f} |")
    lines += ["", "Reference: Kim 2014 CNN-rand 82.7 (trained on phrases too); target >= 83.0.",
              ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poolings", nargs="+", default=["attention", "max", "mean"],
                        choices=("attention", "max", "mean", "last"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ema", type=float, default=0.0,
                        help="evaluate and keep an exponential moving average of the weights")
    parser.add_argument("--word-dropout", type=float, default=0.0,
                        help="drop whole words while training with this probability")
    parser.add_argument("--model", default="rnn", choices=("rnn", "cnn"),
                        help="cnn: Kim's TextCNN baseline (--poolings is then only a label)")
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    parser.add_argument("--hidden", type=int, default=150, help="units per direction")
    parser.add_argument("--embedding-size", type=int, default=300)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--name", default="",
                        help="suffix of the results files and run folders (a variant's own name)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    points = [train_point(pooling, seed, args) for pooling in args.poolings
              for seed in args.seeds]
    chosen = max(points, key=lambda p: p["dev_accuracy"])  # max keeps the first of equals
    ensemble = ensemble_point(points) if len(points) > 1 else None
    record = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "ema": args.ema, "word_dropout": args.word_dropout,
              "model": {key: getattr(args, key) for key in DEFAULT_MODEL}, "selected": chosen,
              "ensemble": ensemble, "points": points}
    save_record(f"classify_sst2_select{args.name}", record, markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
