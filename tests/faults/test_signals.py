"""SIGINT, SIGTERM and SIGHUP at seeded moments (mid-forward, between backward and the optimizer
step, inside a checkpoint write, inside an evaluation): every resumed run must equal the
uninterrupted run bit for bit.

The draws deliver real signals to this process (`os.kill(os.getpid(), ...)`) from inside the
training code, so they land exactly where the draw says; `test_real_signals_*` sends them from
outside to a forked training process at random wall-clock moments.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from fault_tools import TEXT, assert_same_run, fork, lm_args, one_line, wait_exit, wait_for_training

from rnnlab.cli.main import main
from rnnlab.tasks.lm.train import LMTask
from rnnlab.training import checkpoint, trainer

STEPS = 40
DRAWS = 24
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PLACES = ("forward", "before optimizer step", "checkpoint write", "evaluation")
COUNTS = {"signals sent": 0, "interruptions": 0, "resumed exactly": 0}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def straight(tmp_path_factory, text):
    runs = tmp_path_factory.mktemp("straight")
    assert main(lm_args(text, runs / "40", STEPS)) == 0
    return runs


def _arm(monkeypatch, place: str, call: int, signum: int) -> dict[str, int]:
    """Send `signum` to this process at the `call`-th passage through `place`."""
    seen = {"calls": 0, "sent": 0}

    def maybe_fire() -> None:
        seen["calls"] += 1
        if seen["calls"] == call:
            seen["sent"] += 1
            os.kill(os.getpid(), signum)

    def wrap(owner, name):
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            if place == "forward":
                result = original(*args, **kwargs)
                maybe_fire()  # after forward, before backward: the middle of a step
                return result
            maybe_fire()
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapped)

    target = {"forward": (LMTask, "train_loss"),
              "before optimizer step": (trainer, "clip_grad_norm"),
              "checkpoint write": (checkpoint, "save_weights"),
              "evaluation": (LMTask, "evaluate")}
    wrap(*target[place])
    return seen


@pytest.mark.parametrize("seed", range(DRAWS))
def test_interrupted_and_resumed_equals_straight(seed, tmp_path, text, straight, monkeypatch):
    rng = random.Random(seed)
    run = tmp_path / "run"
    plan = [(rng.choice(PLACES), rng.choice(SIGNALS)) for _ in range(rng.randint(1, 3))]
    started = False
    for place, signum in plan:
        calls = {"forward": STEPS, "before optimizer step": STEPS, "checkpoint write": 8,
                 "evaluation": 5}[place]
        with monkeypatch.context() as patch:
            seen = _arm(patch, place, rng.randint(1, calls), signum)
            argv = lm_args(text, run, STEPS, *(["--resume"] if started else []))
            code = main(argv)
        COUNTS["signals sent"] += seen["sent"]
        if code == 0:  # the signal never came (the run ended first) or came after the last step
            break
        assert code == 128 + signum, (place, signum, code)
        COUNTS["interruptions"] += 1
        started = True
    else:
        if started:
            assert main(lm_args(text, run, STEPS, "--resume")) == 0
    assert_same_run(straight / "40", run)
    COUNTS["resumed exactly"] += started


def test_enough_faults_were_injected():
    """The issue asks for at least 20 seeded draws that really interrupted a run."""
    if COUNTS["signals sent"] == 0:
        pytest.skip("run with the draws above")
    print(f"\nsignal faults: {COUNTS}")
    assert COUNTS["interruptions"] >= 20, COUNTS


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_real_signals_at_random_moments(signum, tmp_path, text, monkeypatch):
    """A forked CLI training gets the signal from outside at a random moment: it exits
    128 + signal with one line on stderr, and resuming it reaches the uninterrupted result."""
    steps, rng = 400, random.Random(signum)  # about 1 s of training, 0.3 s between log lines
    straight_run = tmp_path / "straight"
    assert main(lm_args(text, straight_run, steps)) == 0
    run, out = tmp_path / "run", tmp_path / "child.txt"
    pid = fork(lambda: main(lm_args(text, run, steps)), out)
    wait_for_training(run, pid)
    time.sleep(rng.uniform(0.0, 0.3))
    os.kill(pid, signum)
    code = wait_exit(pid)
    message = out.read_text()
    if code == 0 or (code == -signum and '"kind": "end"' in (run / "log.jsonl").read_text()):
        # too fast a machine: training had ended, and the signal found the command drawing
        # its plot or exiting (where SIGTERM's default action applies, as in any program)
        pytest.skip("the run finished before the signal arrived")
    assert code == 128 + signum, message
    assert one_line(message) and "--resume" in message, message
    assert main(lm_args(text, run, steps, "--resume")) == 0
    assert_same_run(straight_run, run)
