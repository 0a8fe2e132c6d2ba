"""UD English-EWT UPOS tagging (gold tokenization): BiLSTM tagger with char BiLSTM features,
from random word embeddings, per-token softmax (Plank et al. 2016's bi-LSTM char+word setting).

Model: word embedding 100 + char BiLSTM 2x25 over 25-dim char embeddings -> word BiLSTM 2x100,
dropout 0.5; singleton words replaced by <unk> with probability 0.5 in training. Adam lr 2e-3,
clip 5, batch 16, lr halved when dev accuracy does not improve; the best dev checkpoint is
tested. A wall-clock budget (--minutes) bounds the run on this shared CPU.

Usage: python benchmarks/tag_pos.py [--minutes 25] [--epochs 30] [--threads 1]
Writes benchmarks/results/tag_pos.{json,md}; the run is kept in runs/bench-tag-pos.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rnnlab.tasks.tag.config import TagConfig
from rnnlab.tasks.tag.train import train_tag
from rnnlab.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {"threads": torch.get_num_threads(), "load_average": list(os.getloadavg()),
            "cpus": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version()}


def train_one(name: str, config: TagConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Train one tagger from scratch within the budget and return its summary."""
    run_dir = Path("runs") / f"bench-tag-{name}"
    shutil.rmtree(run_dir, ignore_errors=True)
    train = TrainConfig(optimizer="adamw", lr=args.lr, weight_decay=0.0, clip=args.clip,
                        schedule="plateau", lr_decay=0.5, epochs=args.epochs,
                        minutes=args.minutes, patience=args.patience, seed=args.seed,
                        threads=args.threads, device=args.device, log_every=50,
                        ema=args.ema)
    started = time.monotonic()
    summary = train_tag(config, train, run_dir, show_progress=not args.quiet)
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    summary["config"] = {k: v for k, v in vars(config).items() if v is not None}
    summary["train_config"] = vars(train)
    print(f"{name}: test {summary['metric']} {summary['test'][summary['metric']]:.4f} "
          f"({summary['wall_seconds']:.0f} s, {summary['epochs_completed']} epochs)", flush=True)
    return summary


def write_results(name: str, title: str, results: dict[str, Any], reference: str,
                  args: argparse.Namespace) -> None:
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    record = {"command": command, "machine": machine(), "reference": reference,
              "models": results}
    m = record["machine"]
    lines = [f"# {title}", "", f"Command: `{command}`", "",
             f"Machine: {m['threads']} torch thread(s), load average "
             f"{', '.join(f'{x:.2f}' for x in m['load_average'])} at the end (a shared "
             f"{m['cpus']}-core CPU), torch {m['torch']}.", "",
             "| model | test metric | dev metric | epochs | stopped by | training time | "
             "tagging speed (test) |", "|---|---|---|---|---|---|---|"]
    for label, s in results.items():
        metric = s["metric"]
        test = s["test"]
        extra = (f" (P {100 * test['precision']:.2f} R {100 * test['recall']:.2f})"
                 if metric == "f1" else "")
        lines.append(
            f"| {label} | {metric} {100 * test[metric]:.2f}{extra} | "
            f"{100 * s['valid'][metric]:.2f} | {s['epochs_completed']} | "
            f"{s['stop_reason'] or 'epochs'} | {s['seconds'] / 60:.1f} min | "
            f"{test['tokens_per_second']:,.0f} tokens/s |")
    lines += ["", f"Reference: {reference}.", ""]
    for label, s in results.items():
        lines.append(f"Signature ({label}): `{s['test']['signature']}`  ")
    lines.append("")
    save_record(f"tag_{name}", record, "\n".join(lines))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--minutes", type=float, default=25.0, help="training budget per model")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu (the timed figures) or cuda (tuning)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="evaluate an exponential moving average of the weights (e.g. 0.999)")
    p.add_argument("--quiet", action="store_true")
    return p


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--word-embedding", type=int, default=100, help="word embedding size")
    p.add_argument("--char-embedding", type=int, default=25, help="char embedding size")
    p.add_argument("--char-hidden", type=int, default=25, help="char BiLSTM units each way")
    p.add_argument("--hidden", type=int, default=100, help="word BiLSTM units each way")
    p.add_argument("--layers", type=int, default=1, help="stacked word BiLSTM layers")
    p.add_argument("--crf", action="store_true", help="a CRF output layer instead of softmax")
    p.add_argument("--name", default="",
                   help="suffix of the results files and run folder (a variant's own name)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = TagConfig(corpus="ud-english-ewt", field="upos", char_features="lstm",
                       crf=args.crf, word_embedding_size=args.word_embedding,
                       char_embedding_size=args.char_embedding, char_hidden=args.char_hidden,
                       hidden=args.hidden, layers=args.layers)
    label = (f"BiLSTM {args.layers}x{args.hidden} char {args.char_hidden}+word "
             f"{args.word_embedding}, {'CRF' if args.crf else 'softmax'} (rnnlab)")
    if not args.name:  # the recorded run's own label
        label = "BiLSTM char+word, softmax (rnnlab)"
    results = {label: train_one(f"pos{args.name}", config, args)}
    write_results(f"pos{args.name}", "UD English-EWT UPOS tagging", results,
                  "Plank et al. 2016 bi-LSTM char+word: 94.6 without, 95.04 with pretrained "
                  "embeddings (UD English v1.2; target >= 95.0)", args)


if __name__ == "__main__":
    main()
