"""What the fault-injection tests share: a tiny LM run, forked writers, and exact comparisons.

Writers run in forked children of the test process (torch is already imported and warm there),
so a `kill -9` or a real signal hits a real training process at a random moment for the cost of
a fork instead of a fresh interpreter (which spends seconds importing torch).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

from rnnlab.training.checkpoint import MODEL_FILE, STATE_FILE, latest_checkpoint

TEXT = "".join(f"line {i} says hello to the little world of rnnlab\n" for i in range(200))


def lm_args(text: Path, run_dir: Path, max_steps: int, *extra: str) -> list[str]:
    """`rnnlab train lm` on a tiny model: milliseconds per step, dropout (so RNG state matters),
    evaluations and checkpoints every 7 steps."""
    return ["train", "lm", "--train", str(text), "--level", "char", "--hidden", "8",
            "--embedding-size", "4", "--layers", "1", "--batch-size", "4", "--bptt", "8",
            "--eval-batch-size", "2", "--dropout-output", "0.2", "--dropout-embedding", "0.1",
            "--lr", "0.01", "--epochs", "100", "--eval-every", "7", "--log-every", "3",
            "--threads", "1", "--seed", "5", "--max-steps", str(max_steps), "--quiet",
            "--run-dir", str(run_dir), *extra]


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """Everything a continued run depends on, as tensors: the newest checkpoint's weights and
    optimizer state, and the best weights."""
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None, f"{run_dir} has no checkpoint"
    tensors = {f"ckpt.{k}": v for k, v in load_file(str(ckpt / MODEL_FILE)).items()}
    tensors |= {f"best.{k}": v for k, v in load_file(str(run_dir / MODEL_FILE)).items()}
    state = torch.load(ckpt / STATE_FILE, weights_only=True)
    for index, slots in state["optimizer"]["state"].items():
        for name, value in slots.items():
            tensors[f"adam.{index}.{name}"] = torch.as_tensor(value)
    tensors["step"] = torch.tensor(state["progress"]["step"])
    return tensors


def assert_same_run(a: Path, b: Path) -> None:
    """Bit for bit: same tensors, same values (not merely close)."""
    left, right = final_state(a), final_state(b)
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), f"{name} differs: {a} vs {b}"


def fork(work: Callable[[], int], output: Path) -> int:
    """Run `work` in a forked child whose stdout and stderr go to `output`; return its PID."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            # pytest replaces sys.stdout/stderr by its own capture files: write to the fds
            sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
            code = work()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait_exit(pid: int, timeout: float = 120.0) -> int:
    """The child's exit status as the shell reports it (-9 for kill -9)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} did not finish in {timeout} s")


def wait_for_training(run_dir: Path, pid: int, timeout: float = 60.0) -> None:
    """Until the child's Trainer has started (its log exists) or the child has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "log.jsonl").exists():
            return
        if os.waitpid(pid, os.WNOHANG)[0]:
            raise AssertionError(f"child {pid} ended before training started")
        time.sleep(0.005)
    raise AssertionError("training did not start")


def one_line(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in text
