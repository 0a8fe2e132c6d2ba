"""`rnnlab ...` as torchrun's worker in the data-parallel tests (run as a script, not a test).

Two test-only settings come from the environment: RNNLAB_TEST_FLOAT64=1 makes every model
float64 (so one process and two agree to 1e-9, not float32's 1e-6), and
RNNLAB_TEST_STEP_SLEEP=S sleeps S seconds after each step (so a test can kill a worker
mid-run). Each worker writes its PID to $RNNLAB_TEST_PIDS/rank-R.pid when that is set.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

from rnnlab.cli.main import main
from rnnlab.training.trainer import Trainer

if os.environ.get("RNNLAB_TEST_FLOAT64") == "1":
    torch.set_default_dtype(torch.float64)

if os.environ.get("RNNLAB_TEST_STEP_SLEEP"):
    pause = float(os.environ["RNNLAB_TEST_STEP_SLEEP"])
    original_step = Trainer._train_step

    def slow_step(self, batch):
        result = original_step(self, batch)
        time.sleep(pause)
        return result

    Trainer._train_step = slow_step

if os.environ.get("RNNLAB_TEST_PIDS"):
    folder = Path(os.environ["RNNLAB_TEST_PIDS"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank-{os.environ.get('RANK', '0')}.pid").write_text(str(os.getpid()))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
