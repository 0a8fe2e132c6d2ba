"""Corrupt each artefact of a run folder in turn (a flipped byte, a truncation, garbage, an empty
file) and use the run: a one-line error (exit 2), or, for the pointer and the log, a correct
recovery. Never a traceback, never silently different weights."""

from __future__ import annotations

import contextlib
import io
import random
import shutil

import pytest
from fault_tools import TEXT, assert_same_run, lm_args, one_line

from rnnlab.cli.main import main
from rnnlab.training.checkpoint import latest_checkpoint

STEPS = 14
CORRUPTIONS = ("flip", "truncate", "garbage", "empty")
# artefact -> the command that reads it
ARTEFACTS = {
    "config.json": "sample",
    "vocab.json": "sample",
    "model.safetensors": "sample",
    "checkpoint/model.safetensors": "resume",
    "checkpoint/trainer_state.pt": "resume",
    "checkpoint/manifest.json": "resume",
}
RECOVERED = ("checkpoints/LATEST", "log.jsonl")  # damage here must not stop a resume
COUNTS = {"corruptions": 0, "one-line errors": 0, "recovered": 0, "tracebacks": 0}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, text):
    run = tmp_path_factory.mktemp("pristine") / "run"
    assert main(lm_args(text, run, STEPS)) == 0
    return run


def _corrupt(path, how: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":  # one byte in the second half: tensor data in a weights file
        index = rng.randrange(len(data) // 2, len(data))
        data[index] ^= 0x80
    elif how == "truncate":
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = bytearray(rng.randbytes(len(data)))
    else:
        data = bytearray()
    path.write_bytes(bytes(data))


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _target(run, artefact):
    if artefact.startswith("checkpoint/"):
        return latest_checkpoint(run) / artefact.split("/", 1)[1]
    return run / artefact


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("artefact", list(ARTEFACTS))
def test_corrupt_artefact_is_one_line(artefact, how, tmp_path, text, pristine):
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    _corrupt(_target(run, artefact), how, random.Random(f"{artefact}{how}"))
    if ARTEFACTS[artefact] == "sample":
        argv = ["sample", str(run), "--length", "5", "--seed", "1"]
    else:
        argv = lm_args(text, run, STEPS + 7, "--resume")
    code, err = _run(argv)
    COUNTS["corruptions"] += 1
    COUNTS["tracebacks"] += "Traceback" in err
    assert code == 2 and one_line(err) and err.startswith("rnnlab: error:"), err
    COUNTS["one-line errors"] += 1


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("artefact", RECOVERED)
def test_damaged_pointer_or_log_still_resumes_exactly(artefact, how, tmp_path, text, pristine):
    run, straight = tmp_path / "run", tmp_path / "straight"
    shutil.copytree(pristine, run)
    _corrupt(run / artefact, how, random.Random(f"{artefact}{how}"))
    assert _run(lm_args(text, run, STEPS + 7, "--resume"))[0] == 0
    assert _run(lm_args(text, straight, STEPS + 7))[0] == 0
    assert_same_run(straight, run)
    COUNTS["corruptions"] += 1
    COUNTS["recovered"] += 1


def test_report_counts():
    if COUNTS["corruptions"]:
        print(f"\ncorruption faults: {COUNTS}")
    assert COUNTS["tracebacks"] == 0
