"""The diagnostics of issue 8 on real runs: gradient flow, long-range memory, cell activations.

Usage (one thread, as every benchmark on the shared machine):
  python benchmarks/diagnostics.py --part gradients --run-dir runs/diag-shakespeare
  python benchmarks/diagnostics.py --part memory --task adding
  python benchmarks/diagnostics.py --part memory --task copy
  python benchmarks/diagnostics.py --part cells --run-dir runs/diag-shakespeare
  python benchmarks/diagnostics.py --part memory-summary   # longest T per seed, all tables
Each part runs the `rnnlab diagnose ...` command it prints, writes
benchmarks/results/diagnostics_<part>.{json,md} and copies its PNGs to docs/images/.
The character model comes from
  rnnlab train lm --preset shakespeare-char --minutes 12 --threads 1 --run-dir RUN --quiet
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

from rnnlab import __version__
from rnnlab.cli.main import main as rnnlab

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"
MEMORY_LENGTHS = {"adding": "10,20,40,80,160", "copy": "2,5,10,20,40,80"}  # copy is harder
VALID_FRACTION = 0.1  # tinyshakespeare's valid split: its last 10% (data/lm_corpus.py)


def shakespeare_valid(chars: int, out: Path) -> Path:
    """The first `chars` characters of tinyshakespeare's valid split, a text none of the model's
    training batches contained."""
    bundled = ROOT / "src" / "rnnlab" / "data" / "bundled" / "tinyshakespeare.txt.gz"
    text = gzip.decompress(bundled.read_bytes()).decode("utf-8")
    start = int(len(text) * (1 - VALID_FRACTION))
    out.write_text(text[start : start + chars], encoding="utf-8")
    return out


def run(argv: list[str]) -> tuple[str, float]:
    """Run one rnnlab command in this process; return its stdout and its wall time."""
    buffer = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buffer):
        code = rnnlab(argv)
    if code != 0:
        raise SystemExit(f"rnnlab {shlex.join(argv)} failed with exit status {code}")
    return buffer.getvalue(), time.perf_counter() - start


def conditions() -> dict:
    return {"rnnlab": __version__, "torch": torch.__version__, "threads": 1,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "note": "shared machine: 2 cores, 5 agents"}


def memory_summary() -> Path:
    """Longest T solved per cell and seed, from every diagnostics_memory_*.json written."""
    lines = ["# diagnostics: longest T solved per seed", "",
             "From `benchmarks/results/diagnostics_memory_<task>[_forget1][_seed<n>].json`; "
             "each entry: seed 0 / 1 / 2 (none: not even the shortest T; ? : not run).", ""]
    for task in ("adding", "copy"):
        for variant in ("", "_forget1"):
            runs = {}
            for seed in (0, 1, 2):
                path = RESULTS / f"diagnostics_memory_{task}{variant}" \
                    f"{f'_seed{seed}' if seed else ''}.json"
                if path.exists():
                    runs[seed] = json.loads(path.read_text())["result"]
            if not runs:
                continue
            first = next(iter(runs.values()))
            lines += [f"## {task}{' (LSTM forget-gate bias 1)' if variant else ''}: "
                      f"T in {first['lengths']}, {first['config']['steps']} steps", "",
                      "| cell | longest T solved (seed 0 / 1 / 2) |", "|---|---|"]
            for cell in first["cells"]:
                per_seed = [str(runs[s]["longest_solved"].get(cell)) if s in runs else "?"
                            for s in (0, 1, 2)]
                lines.append(f"| {cell} | {' / '.join(per_seed).replace('None', 'none')} |")
            lines.append("")
    out = RESULTS / "diagnostics_memory_summary.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", required=True,
                        choices=("gradients", "memory", "cells", "memory-summary"))
    parser.add_argument("--task", default="adding", choices=("adding", "copy"))
    parser.add_argument("--run-dir", default="runs/diag-shakespeare")
    parser.add_argument("--work", default="runs/diagnostics", help="folder for all outputs")
    parser.add_argument("--steps", type=int, default=2000, help="memory: step budget")
    parser.add_argument("--cells", default="rnn,lstm,gru,gru-minimal,lstm-peephole",
                        help="memory: the cells")
    parser.add_argument("--seed", type=int, default=0,
                        help="memory: seed (results get a _seed<n> suffix when not 0)")
    parser.add_argument("--forget-bias", type=float, default=0.0,
                        help="memory: LSTM forget-gate bias (results get a _forget<b> suffix)")
    args = parser.parse_args()
    if args.part == "memory-summary":
        print(memory_summary().read_text())
        return 0
    torch.set_num_threads(1)
    name = args.part
    if args.part == "memory":
        name = f"memory_{args.task}" + (f"_forget{args.forget_bias:g}" if args.forget_bias else "")
        name += f"_seed{args.seed}" if args.seed else ""
    work = Path(args.work) / name
    common = ["--out", str(work), "--threads", "1"]
    if args.part == "gradients":
        argv = ["diagnose", "gradients", "--cells", "rnn,lstm,gru,gru-minimal", "--length",
                "100", "--run-dir", args.run_dir, *common]
        images = ["gradients.png", "gradients_variants.png"]
    elif args.part == "memory":
        argv = ["diagnose", "memory", "--task", args.task, "--cells", args.cells,
                "--lengths", MEMORY_LENGTHS[args.task], "--steps", str(args.steps),
                "--seed", str(args.seed), *common]
        if args.forget_bias:
            argv += ["--forget-bias", f"{args.forget_bias:g}"]
        images = [] if args.seed else [f"memory_{args.task}.png"]  # other seeds: tables only
    else:
        text = shakespeare_valid(20000, Path(args.work) / "shakespeare_valid_20k.txt")
        argv = ["diagnose", "cells", args.run_dir, "--text", str(text), *common]
        images = ["unit.png", "saturation.png"]
    before = conditions()
    stdout, seconds = run(argv)
    result_file = {"gradients": "gradients.json", "cells": "cells.json"}.get(
        args.part, f"memory_{args.task}.json")
    result = json.loads((work / result_file).read_text())
    record = {"command": "rnnlab " + shlex.join(argv), "seconds": round(seconds, 1),
              "conditions_before": before, "conditions_after": conditions(), "result": result}
    md = [f"# diagnostics: {name}", "", f"Command (one thread, shared machine, load average "
          f"{before['load_average']} before, {record['conditions_after']['load_average']} "
          f"after, {seconds:.0f} s, torch {torch.__version__}):", "",
          "```", record["command"], "```", "", "Output:", "", "```", stdout.rstrip(), "```", ""]
    save_record(f"diagnostics_{name}", record, "\n".join(md))
    IMAGES.mkdir(parents=True, exist_ok=True)
    for image in images:
        target = IMAGES / {"cells": f"diagnostics_cells_{image}",
                           "memory": f"diagnostics_{name}.png"}.get(args.part,
                                                                    f"diagnostics_{image}")
        shutil.copyfile(work / image, target)
        print(f"{target} ({target.stat().st_size // 1024} KB)")
    print(stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
