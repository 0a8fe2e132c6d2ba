"""Language-model quality: train a preset, report the dev-loss curve against wall-clock time and
the final metrics on the test split (or valid when the corpus has none).

Usage:
  python benchmarks/lm_quality.py --preset shakespeare-char --minutes 30
  python benchmarks/lm_quality.py --preset ptb-small
  python benchmarks/lm_quality.py --preset shakespeare-gpt --threads 1   (nanoGPT's anchor)
Writes benchmarks/results/lm_<preset>.{json,md}; the run directory is kept (default
runs/bench-<preset>) so its samples and plots can be looked at.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

from rnnlab.config import to_dict
from rnnlab.tasks.lm.presets import PRESETS, preset_configs
from rnnlab.tasks.lm.run import LMRun
from rnnlab.tasks.lm.train import train_lm
from rnnlab.training.log import read_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHECKPOINTS_MIN = (5, 10, 20, 30, 45, 60, 90, 120)


def curve(run_dir: Path) -> list[dict]:
    """Each dev evaluation with the minutes elapsed since training started."""
    records = read_log(run_dir)
    start = next(r["time"] for r in records if r["kind"] == "start")
    return [{"minutes": round((r["time"] - start) / 60, 2), "step": r["step"],
             **{k: r[k] for k in ("loss", "ppl", "bpc") if k in r}}
            for r in records if r["kind"] == "eval"]


def at_minutes(points: list[dict], limit: float) -> list[dict]:
    """The best dev loss reached by each checkpoint time (what a budget of that size gives)."""
    rows = []
    for minutes in CHECKPOINTS_MIN:
        if minutes > limit + 0.5:
            break
        seen = [p for p in points if p["minutes"] <= minutes + 0.25]
        if seen:
            best = min(seen, key=lambda p: p["loss"])
            rows.append({"minutes": minutes, "best_dev_loss": best["loss"], "step": best["step"]})
    return rows


def add_transformer_figures(lm: LMRun, config, train_config, run_dir: Path,  # noqa: ANN001
                            final: dict, data_dir: str | None) -> None:
    """nanoGPT's way to report dev loss (the mean over 200 random batches of windows, its
    `eval_iters` default) beside the whole-stream loss, and the seconds per training step
    (from the log's training throughput, evaluations excluded)."""
    from rnnlab.tasks.lm.predict import window_loss

    valid = lm.load_corpus(data_dir).valid
    final["valid"]["window_loss"] = window_loss(lm.model, valid, config.batch_size,
                                                config.block_size, 200, train_config.seed)
    rates = [r["items_per_second"] for r in read_log(run_dir) if r["kind"] == "train"]
    tokens = config.batch_size * config.block_size
    final["valid"]["seconds_per_step"] = sum(tokens / r for r in rates) / max(len(rates), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--minutes", type=float, default=0.0, help="wall-clock budget")
    parser.add_argument("--epochs", type=int, default=0, help="override the preset's epochs")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0,
                        help="another seed than the preset's (results then go to "
                             "lm_<preset>_seed<S>, beside the preset's own)")
    args = parser.parse_args()

    config, train_config = preset_configs(args.preset, minutes=args.minutes, epochs=args.epochs,
                                          threads=args.threads, seed=args.seed)
    seeded = f"seed{args.seed}" if args.seed else ""  # names a run with another seed apart
    name = "_".join(filter(None, ("lm", args.preset, seeded)))
    run_dir = Path(args.run_dir or "-".join(filter(None, ("runs/bench", args.preset, seeded))))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    load_before = os.getloadavg()
    summary = train_lm(config, train_config, run_dir, data_dir=args.data_dir, show_progress=False)
    points = curve(run_dir)
    lm = LMRun(run_dir, "cpu")
    has_test = lm.info["corpus"] not in ("tinyshakespeare",) or config.train is not None
    final = {split: lm.evaluate(split, args.data_dir)
             for split in (("valid", "test") if has_test else ("valid",))}
    if config.model == "transformer":
        add_transformer_figures(lm, config, train_config, run_dir, final, args.data_dir)
    prime = "ROMEO:" if lm.char_level else "the"
    sample = prime + "".join(lm.generate(prime, 300, seed=1, temperature=0.8))
    result = {
        "command": " ".join(["python", *sys.argv]), "preset": args.preset,
        "config": {**to_dict(config), **to_dict(train_config)}, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "seed": train_config.seed,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "parameters": summary["parameters"], "train_summary": summary,
        "curve": points, "at_minutes": at_minutes(points, summary["seconds"] / 60),
        "final": final, "sample": sample,
    }
    lines = [f"# {args.preset}", "", f"Command: `{result['command']}`; torch {torch.__version__}, "
             f"{result['threads']} threads, seed {train_config.seed}, load average "
             f"{load_before[0]:.2f} before / "
             f"{result['loadavg_after'][0]:.2f} after; {summary['parameters']:,} parameters; "
             f"{summary['steps']} steps in {summary['seconds'] / 60:.1f} min "
             f"({summary['stop_reason']}).", "",
             "| minutes | best dev loss (nats/token) | step |", "|---:|---:|---:|"]
    lines += [f"| {r['minutes']} | {r['best_dev_loss']:.4f} | {r['step']} |"
              for r in result["at_minutes"]]
    lines += ["", "| split | loss | ppl | bpc | signature |", "|---|---:|---:|---:|---|"]
    for split, r in final.items():
        bpc = f"{r['bpc']:.4f}" if "bpc" in r else "-"
        lines.append(f"| {split} | {r['loss']:.4f} | {r['ppl']:.2f} | {bpc} | `{r['signature']}` |")
    if "window_loss" in final["valid"]:
        v = final["valid"]
        lines += ["", f"nanoGPT's estimate (mean loss of 200 random batches of "
                  f"{config.batch_size} x {config.block_size} dev windows): "
                  f"{v['window_loss']:.4f}; whole dev stream in windows of {config.block_size}: "
                  f"{v['loss']:.4f}; {v['seconds_per_step']:.3f} s per training step "
                  "(evaluations excluded)."]
    lines += ["", "Sample (temperature 0.8, seed 1):", "", "```", sample, "```"]
    save_record(name, result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
