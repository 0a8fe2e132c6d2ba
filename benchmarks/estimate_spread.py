"""How far one nanoGPT-style dev-loss reading can fall from a model's dev loss: the spread of
`--batches` random batches of windows (nanoGPT's `--eval_iters`; 20 in its CPU recipe) over
`--draws` independent draws, for trained LM runs.

nanoGPT reports one such reading (1.88 in its README for the shakespeare-gpt recipe, 1.886 on
this project's machine); this tells how much of a gap to it one reading can explain.

    python benchmarks/estimate_spread.py runs/bench-shakespeare-gpt --batches 20 --draws 200

Writes benchmarks/results/estimate_spread.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

import records
from rnnlab.tasks.lm.predict import window_loss
from rnnlab.tasks.lm.run import LMRun


def spread(run_dir: str, batches: int, draws: int, threshold: float,
           data_dir: str | None) -> dict:
    lm = LMRun(run_dir, "cpu")
    config = lm.config
    valid = lm.load_corpus(data_dir).valid
    readings = [window_loss(lm.model, valid, config.batch_size, config.block_size, batches, seed)
                for seed in range(draws)]
    return {"run": str(run_dir), "seed": lm.info.get("train", {}).get("seed"),
            "batches": batches, "draws": draws, "mean": statistics.mean(readings),
            "sd": statistics.stdev(readings), "min": min(readings), "max": max(readings),
            "share_at_or_under": sum(r <= threshold for r in readings) / draws,
            "threshold": threshold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="trained LM run directories (a context length)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=1.90)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [spread(run, args.batches, args.draws, args.threshold, args.data_dir)
            for run in args.runs]
    lines = [f"# One dev-loss reading of {args.batches} random batches, over {args.draws} draws",
             "", f"| run | training seed | mean | sd | min | max | share <= {args.threshold} |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {Path(r['run']).name} | {r['seed']} | {r['mean']:.4f} | {r['sd']:.4f} | "
              f"{r['min']:.4f} | {r['max']:.4f} | {r['share_at_or_under']:.2f} |" for r in rows]
    records.save_record("estimate_spread", {"runs": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
