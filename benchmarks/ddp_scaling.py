"""Data-parallel scaling on this machine: training tokens per second of `rnnlab train lm` in one
process and in N processes under torchrun (gloo, one thread each), and the efficiency.

    python benchmarks/ddp_scaling.py                        # ptb-small and shakespeare-char
    python benchmarks/ddp_scaling.py --presets ptb-small --steps 300 --rounds 3

Each measurement is a real training run (the preset's own model, data and optimizer,
`--max-steps`), launched as a user would launch it; its speed is read from the run's log
(the Trainer's `items_per_second` over each logging window: with N processes these count the
global batch), leaving out the first window (start-up) and the final dev evaluation. One
process and N processes alternate, round after round, so that load from other programs on a
shared machine falls on both; the load average is recorded before and after.

Target (issue 18): 2 processes >= 1.6x one process for ptb-small.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import records

SRC = Path(__file__).resolve().parent.parent / "src"
TARGET = {"ptb-small": 1.6}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_command(preset: str, steps: int, log_every: int, run_dir: Path,
                  processes: int) -> list[str]:
    rnnlab = ["-m", "rnnlab", "train", "lm", "--preset", preset, "--max-steps", str(steps),
              "--log-every", str(log_every), "--eval-every", "0", "--threads", "1", "--quiet",
              "--run-dir", str(run_dir)]
    if processes == 1:
        return [sys.executable, *rnnlab]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", *rnnlab]


def tokens_per_second(run_dir: Path) -> tuple[float, int]:
    """Training tokens per second over the logging windows after the first, and the global
    batch's tokens per step. Windows hold equal token counts, so the overall rate is the
    harmonic mean of the windows' rates."""
    rates, steps = [], []
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            rates.append(record["items_per_second"])
            steps.append(record["step"])
    if len(rates) < 2:
        raise SystemExit(f"{run_dir}: too few logging windows; raise --steps")
    return statistics.harmonic_mean(rates[1:]), len(rates) - 1


def measure(preset: str, steps: int, log_every: int, processes: int, data_dir: str | None,
            work: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(dir=work)) / "run"
    command = train_command(preset, steps, log_every, run_dir, processes)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=f"{SRC}{os.pathsep}{env.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    if data_dir:
        env["RNNLAB_DATA"] = data_dir
    load = os.getloadavg()[0]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    rate, windows = tokens_per_second(run_dir)
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return {"processes": processes, "tokens_per_second": round(rate, 1), "windows": windows,
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="ptb-small,shakespeare-char")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="training steps per run")
    parser.add_argument("--log-every", type=int, default=20, help="steps per timed window")
    parser.add_argument("--rounds", type=int, default=2, help="1 vs N alternations per preset")
    parser.add_argument("--data-dir", help="where the corpora are (default: rnnlab's search)")
    parser.add_argument("--output", default="ddp_scaling", help="results/NAME.{json,md}")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ddp-scaling-"))
    results = []
    try:
        for preset in args.presets.split(","):
            runs = []
            for round_ in range(args.rounds):  # ABBA: 1, N, N, 1, ...
                order = (1, args.processes) if round_ % 2 == 0 else (args.processes, 1)
                for processes in order:
                    runs.append(measure(preset, args.steps, args.log_every, processes,
                                        args.data_dir, work))
                    print(preset, runs[-1], file=sys.stderr, flush=True)
            one = statistics.median(r["tokens_per_second"] for r in runs if r["processes"] == 1)
            many = statistics.median(r["tokens_per_second"] for r in runs
                                     if r["processes"] == args.processes)
            speedup = many / one
            results.append({"preset": preset, "one_process": one, "n_processes": many,
                            "processes": args.processes, "speedup": round(speedup, 3),
                            "efficiency": round(speedup / args.processes, 3),
                            "target": TARGET.get(preset), "runs": runs})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.processes
    lines = [f"# Data-parallel scaling (torchrun, gloo, 1 thread per process, {args.steps} "
             "steps per run)", "",
             f"| preset | tokens/s, 1 process | tokens/s, {n} processes | speed-up | "
             "efficiency | target | met |", "|---|---|---|---|---|---|---|"]
    for r in results:
        target = f">= {r['target']}x" if r["target"] else "-"
        met = ("yes" if r["speedup"] >= r["target"] else "no") if r["target"] else "-"
        lines.append(f"| {r['preset']} | {r['one_process']:.0f} | {r['n_processes']:.0f} | "
                     f"{r['speedup']:.2f}x | {r['efficiency']:.0%} | {target} | {met} |")
    lines += ["", "Medians over the rounds; every run (with the load average before and after "
              "it) is in the JSON. Tokens/s: training steps only, first logging window and dev "
              "evaluation left out; with N processes, the global batch's tokens."]
    records.save_record(args.output, {"results": results, "steps": args.steps,
                                      "log_every": args.log_every}, "\n".join(lines))


if __name__ == "__main__":
    main()
