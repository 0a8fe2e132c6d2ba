"""War and Peace, character level: the LSTM against the best character n-gram (Kneser-Ney,
orders 5-10), on the test split, in nats per character (Karpathy, Johnson & Fei-Fei 2015 use the
same corpus and split: LSTM 1.077 vs n-gram 1.195 nats/char, with GPU-sized models).

Both models see exactly the same ids: the corpus is read once through rnnlab's registry
(80/10/10 in order, BOM and CRLF normalised), the n-grams are fitted on the LSTM's training ids
and score the same test stream. The LSTM is the `warpeace-char` preset trained for a wall-clock
budget on one thread (--minutes of one core = CPU-minutes), then its best dev checkpoint is
scored on test. Its learning rate decays (cosine) over a step budget (--steps) sized so that
the minutes end about when the rate reaches zero.

Usage: python benchmarks/warpeace.py [--orders 5 6 7 8 9 10] [--minutes 60] [--reuse]
       [--steps 7200] [--lr 0.004 --hidden H --layers L --batch-size B --bptt T --dropout P]
(model flags override the preset; unset ones keep it).
Writes benchmarks/results/warpeace.{json,md}; the LSTM run is kept in runs/bench-warpeace.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnlab.config import to_dict
from rnnlab.data.lm_corpus import load_lm_corpus
from rnnlab.tasks.lm.presets import preset_configs
from rnnlab.tasks.lm.run import LMRun
from rnnlab.tasks.lm.train import train_lm
from rnnlab.tasks.ngram import NGramConfig, NGramModel
from rnnlab.training.log import read_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ANCHOR = "Karpathy et al. 2015: LSTM 1.077 vs n-gram 1.195 nats/char (same corpus and split)"


def ngram_rows(orders: list[int], data_dir: str | None) -> list[dict]:
    corpus = load_lm_corpus("warpeace", data_dir)
    ids = {split: getattr(corpus, split).numpy().astype(np.int64)
           for split in ("train", "valid", "test")}
    rows = []
    for order in orders:
        started = time.perf_counter()
        model = NGramModel.fit(ids["train"], len(corpus.vocab),
                               NGramConfig(order=order, smoothing="kneser-ney"))
        fit_s = time.perf_counter() - started
        nats = {split: float(-model.score_stream(ids[split]).mean())
                for split in ("valid", "test")}
        rows.append({"model": f"KN {order}-gram", "order": order, "fit_s": round(fit_s, 1),
                     "valid_nats": nats["valid"], "test_nats": nats["test"],
                     "test_chars": len(ids["test"])})
        print(f"KN {order}-gram: valid {nats['valid']:.4f} test {nats['test']:.4f} nats/char "
              f"(fit {fit_s:.0f} s)", flush=True)
    return rows


def train_lstm(minutes: float, steps: int, run_dir: Path, reuse: bool,
               data_dir: str | None, overrides: dict, dropout: float | None) -> dict:
    # A cosine decay over a step budget sized to the minutes (whichever ends first stops it):
    # a budgeted run should end with a low learning rate, not in the middle of a constant one.
    config, train_config = preset_configs("warpeace-char", minutes=minutes, threads=1,
                                          schedule="cosine", max_steps=steps, eval_every=1000,
                                          **overrides)
    if dropout is not None:  # 0 is a value here, which preset_configs would read as "unset"
        config = dataclasses.replace(config, dropout=dropout, dropout_output=dropout)
    if not (reuse and (run_dir / "config.json").exists()):
        shutil.rmtree(run_dir, ignore_errors=True)
        train_lm(config, train_config, run_dir, data_dir=data_dir, show_progress=False)
    records = read_log(run_dir)
    start = next(r["time"] for r in records if r["kind"] == "start")
    end = next(r for r in reversed(records) if r["kind"] == "end")
    curve = [{"minutes": round((r["time"] - start) / 60, 1), "step": r["step"],
              "dev_nats": r["loss"]} for r in records if r["kind"] == "eval"]
    run = LMRun(run_dir, "cpu")
    scores = {split: run.evaluate(split, data_dir) for split in ("valid", "test")}
    print(f"LSTM: valid {scores['valid']['loss']:.4f} test {scores['test']['loss']:.4f} "
          f"nats/char after {end['seconds'] / 60:.1f} min", flush=True)
    tuned = " + overrides" if overrides or dropout is not None else ""
    return {"model": f"LSTM {config.layers}x{config.hidden} (warpeace-char{tuned})",
            "valid_nats": scores["valid"]["loss"],
            "test_nats": scores["test"]["loss"], "train_minutes": end["seconds"] / 60,
            "steps": end["steps"], "parameters": run.model.num_parameters(),
            "config": {**to_dict(config), **to_dict(train_config)}, "dev_curve": curve}


def markdown(record: dict) -> str:
    lines = ["# War and Peace, character level: LSTM vs Kneser-Ney n-grams (test split)", "",
             f"Command: `{record['command']}`  ",
             f"torch {record['torch']}, one thread on a shared 2-core CPU, load average "
             f"{record['load_average']} at the end. nats/char on the test split (the last 10%, "
             "~320k chars); lower is better.", "",
             "| model | valid nats/char | test nats/char | test bits/char | cost |",
             "|---|---:|---:|---:|---|"]
    for row in record["rows"]:
        cost = (f"{row['train_minutes']:.0f} min training, {row['steps']} steps, "
                f"{row['parameters']:,} parameters" if "train_minutes" in row
                else f"fit {row['fit_s']:.0f} s")
        lines.append(f"| {row['model']} | {row['valid_nats']:.4f} | {row['test_nats']:.4f} | "
                     f"{row['test_nats'] / math.log(2):.3f} | {cost} |")
    verdict = record.get("verdict")
    if verdict:
        lines += ["", verdict]
    lines += ["", f"Anchor: {ANCHOR}.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="*", default=[5, 6, 7, 8, 9, 10])
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="LSTM training budget on one thread; 0: no LSTM")
    parser.add_argument("--steps", type=int, default=6000,
                        help="step budget of the cosine decay (about what --minutes allows)")
    parser.add_argument("--run-dir", default="runs/bench-warpeace")
    parser.add_argument("--reuse", action="store_true",
                        help="score the LSTM already in --run-dir instead of training one")
    parser.add_argument("--data-dir", default=None)
    # The preset's values unless given (0: keep the preset's).
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--bptt", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout between layers and on outputs")
    args = parser.parse_args()
    overrides = {k: getattr(args, k) for k in ("layers", "hidden", "batch_size", "bptt", "lr")
                 if getattr(args, k)}
    torch.set_num_threads(1)
    path = RESULTS / "warpeace.json"
    earlier = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = ngram_rows(args.orders, args.data_dir) if args.orders else [
        r for r in earlier if "order" in r]
    if args.minutes:
        rows.append(train_lstm(args.minutes, args.steps, Path(args.run_dir), args.reuse,
                               args.data_dir, overrides, args.dropout))
    else:
        rows += [r for r in earlier if "order" not in r]
    record = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
              "torch": torch.__version__, "load_average": [round(x, 2) for x in os.getloadavg()],
              "rows": rows}
    grams = [r for r in rows if "order" in r]
    lstm = [r for r in rows if "order" not in r]
    if grams and lstm:
        best = min(grams, key=lambda r: r["test_nats"])
        beats = lstm[0]["test_nats"] < best["test_nats"]
        record["verdict"] = (f"The LSTM ({lstm[0]['test_nats']:.4f}) "
                             f"{'beats' if beats else 'does not beat'} the best n-gram, "
                             f"{best['model']} ({best['test_nats']:.4f}), after "
                             f"{lstm[0]['train_minutes']:.0f} CPU-minutes.")
    save_record("warpeace", record, markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
