"""kill -9 at random moments, two writers at once, and a full disk: the run folder is always
loadable and resumable, and what it holds is exact."""

from __future__ import annotations

import json
import os
import random
import resource
import time

import pytest
from fault_tools import TEXT, assert_same_run, fork, lm_args, one_line, wait_exit, wait_for_training

from rnnlab.cli.main import main
from rnnlab.training.checkpoint import checkpoint_step, holds_run, latest_checkpoint

STEPS = 150
KILLS = 4


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def straight(tmp_path_factory, text):
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(lm_args(text, run, STEPS)) == 0
    return run


def _logged_evals(run) -> list[int]:
    path = run / "log.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if record.get("kind") == "eval":
            steps.append(record["step"])
    return steps


@pytest.mark.parametrize("seed", range(KILLS))
def test_kill_9_at_a_random_moment(seed, tmp_path, text, straight):
    run, out = tmp_path / "run", tmp_path / "child.txt"
    pid = fork(lambda: main(lm_args(text, run, STEPS)), out)
    wait_for_training(run, pid)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    os.kill(pid, 9)
    code = wait_exit(pid)
    if code == 0:
        pytest.skip("the run finished before the kill")
    assert code == -9
    if holds_run(run):
        # Nothing lost but the steps since the last checkpoint: the log's last evaluation
        # (written just before its checkpoint) is at most one checkpoint ahead.
        evals = _logged_evals(run)
        newest = checkpoint_step(latest_checkpoint(run))
        assert not evals or newest >= max(evals) - 7
        assert main(lm_args(text, run, STEPS, "--resume")) == 0
    else:  # killed before its first checkpoint: not a run yet, so it may simply start again
        assert main(lm_args(text, run, STEPS)) == 0
    assert not list(run.glob(".*.tmp")) and not list((run / "checkpoints").glob(".*"))
    assert_same_run(straight, run)


def test_two_writers_one_refused_the_other_intact(tmp_path, text, straight, capsys):
    run, out = tmp_path / "run", tmp_path / "child.txt"
    pid = fork(lambda: main(lm_args(text, run, STEPS)), out)
    wait_for_training(run, pid)
    for extra in ([], ["--resume"]):
        code = main(lm_args(text, run, STEPS, *extra))
        err = capsys.readouterr().err
        if wait_exit_nowait(pid):
            pytest.skip("the first writer finished before the second came")
        assert code == 2 and one_line(err) and f"PID {pid}" in err, err
    assert wait_exit(pid) == 0, out.read_text()
    assert_same_run(straight, run)


def wait_exit_nowait(pid: int) -> bool:
    """True when the child has already ended (its status is then collected by wait_exit)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    done, _ = os.waitpid(pid, os.WNOHANG)
    if done:
        raise AssertionError("child ended early")  # pragma: no cover
    return False


@pytest.mark.parametrize("limit_at", ["log", "first checkpoint"])
def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(limit_at, tmp_path, text, straight):
    """A file-size limit (`ulimit -f`) stands in for a full disk: writes beyond it fail with
    EFBIG. `log`: the log outgrows it mid-run; `first checkpoint`: the optimizer state does not
    fit, so not even one checkpoint completes."""
    run, out = tmp_path / "run", tmp_path / "child.txt"
    state_size = (latest_checkpoint(straight) / "trainer_state.pt").stat().st_size
    log_lines = ["--log-every", "1"] if limit_at == "log" else []
    limit = state_size + 512 if limit_at == "log" else state_size // 2

    def limited() -> int:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return main(lm_args(text, run, STEPS, *log_lines))

    code = wait_exit(fork(limited, out))
    message = out.read_text()
    assert code == 2 and one_line(message) and "cannot write" in message, message
    assert not list(run.glob(".*.tmp")) and not list((run / "checkpoints").glob(".*"))
    if limit_at == "log":
        assert latest_checkpoint(run) is not None
        assert main(lm_args(text, run, STEPS, *log_lines, "--resume")) == 0
        assert_same_run(straight, run)
    else:
        assert not holds_run(run)  # a new start may use the folder
        assert main(lm_args(text, run, STEPS)) == 0
        assert_same_run(straight, run)
