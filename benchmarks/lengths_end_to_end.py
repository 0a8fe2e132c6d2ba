"""Issue 21, end to end: one training epoch of the CoNLL-2003 NER tagger (BiLSTM-CRF) and the
SST-2 classifier (BiLSTM), same seed, with the code as before the issue ("before": torch's
packed LSTM kernel for batches with lengths, `LSTM.lengths_kernel = "packed"`, torch's
default AdamW, and glibc's default malloc thresholds, RNNLAB_KEEP_FREED_MEMORY=0) and as now
("now": the padded oneDNN kernel with the packed path's numbers, nn/lengths.py, the fused AdamW,
training/optim.py, and the freed memory kept for the next step, training/allocator.py).

Each run is a real `rnnlab train tag|classify` process at one thread; time per step from its own
log (CPU user+system seconds and wall clock between the first and last train record: start-up
and the evaluation after the epoch left out), and the dev score after the epoch.

Usage: python benchmarks/lengths_end_to_end.py [--tasks conll2003,sst2] [--epochs 1]
Writes benchmarks/results/lengths_end_to_end.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from records import save_record  # noqa: E402

TASKS = {  # name -> (rnnlab train arguments, dev metric in the eval record)
    "conll2003": (["tag", "--corpus", "conll2003", "--crf"], "f1"),
    "sst2": (["classify", "--corpus", "sst2"], "accuracy"),
}
# "before": torch's packed LSTM kernel, torch's default (unfused) AdamW and glibc's malloc
# defaults, as before issue 21; "now": the lengths path (auto), the fused AdamW
# (training/optim.py) and the freed memory kept (training/allocator.py).
RUNNER = ("import sys; from rnnlab.nn import LSTM; from rnnlab.training import optim; "
          "LSTM.lengths_kernel = 'packed' if sys.argv[1] == 'before' else 'auto'; "
          "optim.FUSED_ADAMW = sys.argv[1] != 'before'; "
          "from rnnlab.cli.main import main; raise SystemExit(main(sys.argv[2:]))")


def read_run(run_dir: Path, metric: str) -> dict:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    first, last = train[0], train[-1]
    steps = last["step"] - first["step"]
    cpu = (last["cpu_user"] + last["cpu_system"] - first["cpu_user"] - first["cpu_system"])
    return {"steps_timed": steps, "cpu_ms_per_step": 1e3 * cpu / steps,
            "wall_ms_per_step": 1e3 * (last["time"] - first["time"]) / steps,
            "steps": last["step"], f"dev_{metric}": evals[-1][metric]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="conll2003,sst2")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", default="lengths_end_to_end")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, task in enumerate(args.tasks.split(",")):
            arguments, metric = TASKS[task]
            kernels = ("before", "now") if number % 2 == 0 else ("now", "before")
            for kernel in kernels:
                run_dir = Path(tmp) / f"{task}-{kernel}"
                command = [sys.executable, "-c", RUNNER, kernel, "train", *arguments,
                           "--epochs", str(args.epochs), "--seed", "1", "--threads", "1",
                           "--log-every", "20", "--quiet", "--run-dir", str(run_dir)]
                keep = "0" if kernel == "before" else "1"
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "RNNLAB_KEEP_FREED_MEMORY": keep})
                row = {"task": task, "code": kernel, **read_run(run_dir, metric)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    lines = ["# Tagger and classifier epochs end to end: before issue 21 vs now", "",
             f"Command: `python {' '.join(sys.argv)}`; one thread, seed 1, {args.epochs} "
             f"epoch(s) a run; load average {load_before[0]:.2f} before, "
             f"{os.getloadavg()[0]:.2f} after. ms per training step between the first and last "
             "train record of each run's log; dev score after the last epoch.", "",
             "| task | code | steps | CPU ms/step | wall ms/step | dev |",
             "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        dev = next(v for k, v in row.items() if k.startswith("dev_"))
        lines.append(f"| {row['task']} | {row['code']} | {row['steps']} | "
                     f"{row['cpu_ms_per_step']:.1f} | {row['wall_ms_per_step']:.1f} | "
                     f"{dev:.4f} |")
    for task in dict.fromkeys(r["task"] for r in rows):
        by = {r["code"]: r for r in rows if r["task"] == task}
        if {"before", "now"} <= by.keys():
            cpu, wall = (by["before"][f"{clock}_ms_per_step"] / by["now"][f"{clock}_ms_per_step"]
                         for clock in ("cpu", "wall"))
            lines.append(f"\n{task}: speed-up per step {cpu:.2f}x (CPU), {wall:.2f}x (wall).")
    save_record(args.output, {"rows": rows, "loadavg_before": load_before,
                              "loadavg_after": os.getloadavg()}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
