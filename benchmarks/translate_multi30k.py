"""Multi30k German->English: no attention vs Bahdanau vs Luong, greedy vs beam, source reversal.

Usage (one model per invocation, so each run stays inside its own time budget):
  python benchmarks/translate_multi30k.py --model bahdanau --minutes 25
  python benchmarks/translate_multi30k.py --model luong --minutes 25
  python benchmarks/translate_multi30k.py --model none --minutes 15
  python benchmarks/translate_multi30k.py --model none-reversed --minutes 15
Each run trains (1 thread), then decodes the test split greedily and with beam 5, and merges its
row into benchmarks/results/translate_multi30k.{json,md}. BLEU and chrF are sacrebleu's, on
lower-cased detokenized output against the lower-cased raw references (signatures recorded).
The Bahdanau run also saves an attention heatmap to docs/images/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from rnnlab.config import to_dict
from rnnlab.tasks.translate.config import TranslateConfig
from rnnlab.tasks.translate.run import TranslateRun
from rnnlab.tasks.translate.train import train_translate
from rnnlab.training.config import TrainConfig
from rnnlab.training.log import read_log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
IMAGE = ROOT / "docs" / "images" / "translate_attention.png"
COMMON = dict(cell="gru", embedding=256, hidden=256, layers=1, bidirectional=True, dropout=0.3,
              batch_size=128, min_freq=2, dev_metric="bleu")
MODELS = {
    "none": dict(attention="none"),
    "none-reversed": dict(attention="none", reverse_source=True),
    "bahdanau": dict(attention="bahdanau"),
    "luong": dict(attention="general", input_feeding=True),
}
ANCHORS = {"none": 13.8, "bahdanau": 28.3}  # published greedy anchors on this data (issue text)
BEAM, ALPHA = 5, 0.6


def dev_curve(run_dir: Path) -> list[dict]:
    """Dev evaluations with the training minutes before each (a resumed run's pause left out)."""
    points, trained, segment_start, last = [], 0.0, 0.0, 0.0
    for r in read_log(run_dir):
        if r["kind"] == "start":
            trained += last - segment_start
            segment_start = last = r["time"]
            continue
        last = r["time"]
        if r["kind"] == "eval":
            points.append({"minutes": round((trained + last - segment_start) / 60, 1),
                           "step": r["step"], "epoch": r["epoch"], "dev_bleu": round(r["bleu"], 2),
                           "dev_ppl": round(r["ppl"], 2)})
    return points


def markdown(results: dict) -> str:
    lines = [
        "# Multi30k de->en (test_2016_flickr, 1,000 sentences)", "",
        "sacrebleu BLEU / chrF on lower-cased detokenized output vs lower-cased raw references; "
        f"beam {BEAM} with GNMT length penalty alpha {ALPHA}. One thread on a shared 2-core CPU "
        "(load average at the start of each run in the last column; the runs shared the machine "
        "with other jobs, so minutes are not comparable between rows: compare steps and the "
        "dev curves in the JSON). Anchors: the published small-scale greedy figures quoted in "
        "the issue (no attention 13.8, Bahdanau 28.3).", "",
        "| model | train min | epochs | steps | best dev BLEU | test BLEU greedy | test BLEU "
        "beam 5 | chrF beam 5 | test ppl | sent/s greedy | sent/s beam 5 | anchor | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        g, b = r["greedy"], r["beam"]
        lines.append(
            f"| {name} | {r['train_minutes']:.1f} | {r['epochs_completed']} | {r['steps']} | "
            f"{r['best_dev_bleu']:.2f} | {g['bleu']:.2f} | {b['bleu']:.2f} | {b['chrf']:.2f} | "
            f"{g['ppl']:.2f} | {g['sentences_per_second']:.1f} | "
            f"{b['sentences_per_second']:.1f} | {ANCHORS.get(name, '-')} | {r['load'][0]:.1f} |")
    any_result = next(iter(results.values()))
    lines += ["", f"BLEU signature: `{any_result['beam']['bleu_signature']}`",
              f"chrF signature: `{any_result['beam']['chrf_signature']}`",
              f"ppl signature: `{any_result['greedy']['ppl_signature']}`", "",
              "Commands: `python benchmarks/translate_multi30k.py --model NAME --minutes M` "
              "(see each entry's `command` in the JSON)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--minutes", type=float, default=25.0, help="training budget")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--resume", action="store_true",
                        help="continue the model's run directory for --minutes more")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    run_dir = Path(args.run_dir or ROOT / "runs" / f"bench-translate-{args.model}")
    config = TranslateConfig(**COMMON, **MODELS[args.model])
    train = TrainConfig(optimizer="adamw", lr=1e-3, clip=1.0, epochs=args.epochs,
                        minutes=args.minutes, log_every=20, seed=1, threads=1, device="cpu")
    path = RESULTS / "translate_multi30k.json"
    previous = json.loads(path.read_text()).get(args.model, {}) if path.exists() else {}
    earlier_minutes = previous.get("train_minutes", 0.0) if args.resume else 0.0
    started = time.perf_counter()
    summary = train_translate(config, train, run_dir, data_dir=args.data_dir,
                              resume=args.resume, show_progress=False)
    train_minutes = earlier_minutes + (time.perf_counter() - started) / 60
    model = TranslateRun(run_dir, device="cpu")
    greedy = model.evaluate("test", beam=1, data_dir=args.data_dir)
    beam = model.evaluate("test", beam=BEAM, alpha=ALPHA, data_dir=args.data_dir)
    examples = beam["hypotheses"][:5]
    for result in (greedy, beam):
        result.pop("hypotheses")
    if args.model == "bahdanau":
        from rnnlab.plots import plot_attention

        line = "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."
        shown = model.translate([line], beam=BEAM, alpha=ALPHA)[0]
        IMAGE.parent.mkdir(parents=True, exist_ok=True)
        plot_attention(shown.weights, shown.source_tokens, shown.target_tokens, IMAGE,
                       title=f"Bahdanau attention, beam {BEAM}")
    curve = dev_curve(run_dir)
    entry = {
        "command": " && ".join(filter(None, [
            previous.get("command") if args.resume else None,
            f"python benchmarks/translate_multi30k.py --model {args.model} "
            f"--minutes {args.minutes:g}" + (" --resume" if args.resume else "")])),
        "config": to_dict(config), "train": to_dict(train), "parameters": summary["parameters"],
        "train_minutes": train_minutes, "stop_reason": summary["stop_reason"],
        "steps": summary["steps"], "epochs_completed": summary["epochs_completed"],
        "best_dev_bleu": max(p["dev_bleu"] for p in curve), "dev_curve": curve,
        "greedy": greedy, "beam": beam, "examples": examples,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "load": list(load), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus (shared)",
    }
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("environment", None)  # the last invocation's; save_record writes this one's
    results[args.model] = entry
    save_record("translate_multi30k", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
