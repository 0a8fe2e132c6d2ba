"""Data-parallel training under torchrun (2 processes on localhost, gloo, one thread each).

The oracle is one process: N steps on 2 ranks with global batch B give the weights of N steps
in one process with batch B (float64, no dropout: within 1e-9), for an LM (streams split
unevenly, 3 + 2), a CRF tagger (sentences of varied length, a batch smaller than the world), an
attention classifier and an attention translator.
A resumed 2-rank run equals an uninterrupted one bit for bit (with dropout, so each rank's RNG
matters, and the ranks' dropout streams differ), and so does a run in which one worker was
killed and torchrun restarted the group.
Plus the sharing arithmetic, in-process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnlab.training.checkpoint import MODEL_FILE, STATE_FILE, latest_checkpoint
from rnnlab.training.distributed import Borrowed, World, rank_columns, share

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from fault_tools import assert_same_run  # noqa: E402

WORKER = Path(__file__).with_name("ddp_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"
TEXT = "".join(f"line {i} says hello to the little world of rnnlab\n" for i in range(120))
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dogs", "run", "fast", "and", "jump"]
TAGS = ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN", "NOUN", "VERB", "ADV", "CONJ", "VERB"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=f"{SRC}{os.pathsep}{env.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               **extra)
    return env


def torchrun(args: list[str], *, processes: int = 2, launch: tuple[str, ...] = ()) -> list[str]:
    """The c10d rendezvous (not a static --master-port): a restarted group then meets in a
    new round; with the static one, torch 2.13's restarted gloo workers dialled the dead
    workers' addresses."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", *launch,
            str(WORKER), *args]


def run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=environment(**env), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def alone(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, str(WORKER), *args], **env)


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None
    return load_file(str(checkpoint / MODEL_FILE))


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a if not a[k].is_floating_point())
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp-text") / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def lm_args(text: Path, run_dir: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "lm", "--train", str(text), "--level", "char", "--hidden", "8",
            "--embedding-size", "4", "--layers", "1", "--bptt", "8", "--eval-batch-size", "2",
            "--lr", "0.01", "--epochs", "50", "--eval-every", "5", "--log-every", "5",
            "--threads", "1", "--seed", "5", "--max-steps", str(steps), "--quiet",
            "--run-dir", str(run_dir), *extra]


NO_DROPOUT = ("--dropout", "0", "--dropout-output", "0", "--dropout-embedding", "0")


@pytest.mark.parametrize("model", [["--model", "rnn"],
                                   ["--model", "transformer", "--block-size", "8"]],
                         ids=["lstm", "transformer"])
def test_lm_two_ranks_equal_one_process(tmp_path, text, model):
    """Global batch 5 = streams 3 + 2; clipping at 0.5 acts on the all-reduced gradient."""
    args = [*NO_DROPOUT, *model, "--batch-size", "5", "--clip", "0.5"]
    alone(lm_args(text, tmp_path / "one", 12, *args), RNNLAB_TEST_FLOAT64="1")
    done = run(torchrun(lm_args(text, tmp_path / "two", 12, *args)), RNNLAB_TEST_FLOAT64="1")
    assert "batch_per_process: [3, 2]" in done.stdout
    one, two = last_weights(tmp_path / "one"), last_weights(tmp_path / "two")
    assert next(iter(one.values())).dtype == torch.float64
    assert max_difference(one, two) <= 1e-9


def conll(sentences: int) -> str:
    """Sentences of 1 to 7 words, so the ranks' shares hold different token counts."""
    lines = []
    for s in range(sentences):
        for w in range(1 + s * 3 % 7):
            index = (s + 2 * w) % len(WORDS)
            lines.append(f"{WORDS[index]} {TAGS[index]}")
        lines.append("")
    return "\n".join(lines) + "\n"


def test_tagger_two_ranks_equal_one_process(tmp_path):
    """11 sentences in batches of 5: shares 3 + 2 of varied lengths, and a last batch of one
    sentence, which rank 1 only borrows (weight zero)."""
    data = tmp_path / "train.conll"
    data.write_text(conll(11), encoding="utf-8")

    def tag_args(run_dir: Path) -> list[str]:
        return ["train", "tag", "--train", str(data), "--valid", str(data), "--crf",
                "--char-features", "none", "--hidden", "6", "--word-embedding-size", "5",
                "--dropout", "0", "--unk-replace", "0", "--batch-size", "5", "--epochs", "3",
                "--max-steps", "7", "--lr", "0.05", "--threads", "1", "--seed", "3",
                "--quiet", "--run-dir", str(run_dir)]

    alone(tag_args(tmp_path / "one"), RNNLAB_TEST_FLOAT64="1")
    run(torchrun(tag_args(tmp_path / "two")), RNNLAB_TEST_FLOAT64="1")
    assert max_difference(last_weights(tmp_path / "one"), last_weights(tmp_path / "two")) <= 1e-9


def test_translator_two_ranks_equal_one_process(tmp_path):
    """Attention GRU encoder-decoder on pairs of 1 to 5 words: each rank's mean over its own
    target tokens, weighted by its token count (`weigh`), is the global batch's mean."""
    pairs = [(" ".join(WORDS[(s + w) % len(WORDS)] for w in range(1 + s % 5)),
              " ".join(TAGS[(s + 2 * w) % len(TAGS)] for w in range(1 + s * 3 % 5)))
             for s in range(13)]
    for side, column in (("de", 0), ("en", 1)):
        (tmp_path / f"train.{side}").write_text("".join(p[column] + "\n" for p in pairs),
                                                encoding="utf-8")

    def translate_args(run_dir: Path) -> list[str]:
        files = [str(tmp_path / f"train.{side}") for side in ("de", "en")]
        return ["train", "translate", "--src-train", files[0], "--tgt-train", files[1],
                "--src-valid", files[0], "--tgt-valid", files[1], "--min-freq", "1",
                "--model", "gru", "--embedding", "5", "--hidden", "6", "--dropout", "0",
                "--teacher-forcing", "1", "--batch-size", "5", "--epochs", "3",
                "--max-steps", "7", "--dev-sentences", "2", "--clip", "0.5", "--threads", "1",
                "--seed", "3", "--quiet", "--run-dir", str(run_dir)]

    alone(translate_args(tmp_path / "one"), RNNLAB_TEST_FLOAT64="1")
    run(torchrun(translate_args(tmp_path / "two")), RNNLAB_TEST_FLOAT64="1")
    assert max_difference(last_weights(tmp_path / "one"), last_weights(tmp_path / "two")) <= 1e-9


def test_classifier_two_ranks_equal_one_process(tmp_path):
    """BiLSTM with attention pooling on reviews of 1 to 6 words: one example, one item."""
    rows = [(("pos", "neg")[s % 2], " ".join(WORDS[(s * 5 + w) % len(WORDS)]
                                            for w in range(1 + s * 2 % 6))) for s in range(13)]
    data = tmp_path / "train.tsv"
    data.write_text("label\ttext\n" + "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    args = ["train", "classify", "--train", str(data), "--valid", str(data), "--min-freq", "1",
            "--model", "lstm", "--pooling", "attention", "--embedding-size", "5", "--hidden",
            "4", "--dropout", "0", "--word-dropout", "0", "--batch-size", "5", "--epochs", "3",
            "--max-steps", "7", "--threads", "1", "--seed", "3", "--quiet"]
    alone([*args, "--run-dir", str(tmp_path / "one")], RNNLAB_TEST_FLOAT64="1")
    run(torchrun([*args, "--run-dir", str(tmp_path / "two")]), RNNLAB_TEST_FLOAT64="1")
    assert max_difference(last_weights(tmp_path / "one"), last_weights(tmp_path / "two")) <= 1e-9


@pytest.mark.slow
def test_resume_under_two_ranks_equals_an_uninterrupted_run(tmp_path, text):
    """With dropout: each rank's RNG stream and carried LSTM state come back from the
    checkpoint, so the resumed run is the same, bit for bit."""
    args = ["--batch-size", "4", "--dropout-output", "0.3"]
    run(torchrun(lm_args(text, tmp_path / "straight", 14, *args)))
    state = torch.load(latest_checkpoint(tmp_path / "straight") / STATE_FILE, weights_only=True)
    assert state["world_size"] == 2
    # equal shares (2 + 2) draw equally many masks: only a per-rank seed makes them differ
    assert not torch.equal(state["rng_cpu"], state["ranks"][0]["rng_cpu"])
    run(torchrun(lm_args(text, tmp_path / "resumed", 7, *args)))
    run(torchrun(lm_args(text, tmp_path / "resumed", 14, *args, "--resume")))
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")


@pytest.mark.slow
def test_resume_with_another_world_size_is_refused(tmp_path, text):
    run(torchrun(lm_args(text, tmp_path / "run", 5, "--batch-size", "4")))
    done = subprocess.run([sys.executable, str(WORKER),
                           *lm_args(text, tmp_path / "run", 10, "--batch-size", "4", "--resume")],
                          env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "written by 2 training processes and this run has 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_ngram_refuses_torchrun(tmp_path, text):
    done = subprocess.run(torchrun(["train", "ngram", "--train", str(text), "--run-dir",
                                    str(tmp_path / "kn")]),
                          env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "run it without torchrun" in done.stderr


def test_info_shows_the_world_under_torchrun(tmp_path):
    """As a user runs it (`torchrun ... -m rnnlab info`): rank 0 alone prints, every rank has
    its line."""
    command = torchrun([])[:-1] + ["-m", "rnnlab", "info", "--data-dir", str(tmp_path)]
    done = run(command)
    assert "world: 2 processes (torchrun), backend gloo" in done.stdout
    assert "rank 0: host " in done.stdout and "rank 1: host " in done.stdout
    versions = [line for line in done.stdout.splitlines() if line.startswith("rnnlab ")]
    assert len(versions) == 1  # the rest of `info`, once


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_nothing_is_lost(tmp_path, text):
    """kill -9 rank 1 after the first checkpoint: torchrun (--max-restarts 1) restarts the
    group, which resumes from the last checkpoint, and the run ends as if nothing happened."""
    args = ["--batch-size", "4", "--dropout-output", "0.3"]
    run(torchrun(lm_args(text, tmp_path / "straight", 30, *args)))
    pids = tmp_path / "pids"
    command = torchrun(lm_args(text, tmp_path / "killed", 30, *args),
                       launch=("--max-restarts", "1"))
    group = subprocess.Popen(command, env=environment(RNNLAB_TEST_STEP_SLEEP="0.1",
                                                      RNNLAB_TEST_PIDS=str(pids)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: latest_checkpoint(tmp_path / "killed") is not None)
        first = latest_checkpoint(tmp_path / "killed")
        os.kill(int((pids / "rank-1.pid").read_text()), signal.SIGKILL)
        out, err = group.communicate(timeout=180)
    finally:
        if group.poll() is None:
            group.kill()
        # a group that failed can leave workers behind torchrun (a failed run once left two,
        # waiting for a peer): end every worker this test started
        for pid_file in pids.glob("rank-*.pid") if pids.exists() else ():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert group.returncode == 0, err[-4000:]
    assert "stop_reason: max steps" in out
    log = (tmp_path / "killed" / "log.jsonl").read_text()
    assert '"resumed": true' in log, f"no restart happened after {first}"
    assert_same_run(tmp_path / "straight", tmp_path / "killed")


# -- the sharing arithmetic, in-process --------------------------------------------------------


@pytest.mark.parametrize("batch,size", [(20, 2), (5, 2), (7, 3), (3, 3)])
def test_rank_columns_tile_the_batch(batch, size):
    parts = [rank_columns(batch, World(r, size)) for r in range(size)]
    covered = [c for part in parts for c in range(batch)[part]]
    assert covered == list(range(batch))
    assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_a_batch_smaller_than_the_world_is_refused_for_streams():
    from rnnlab.errors import RnnlabError

    with pytest.raises(RnnlabError, match="cannot be shared by 4 processes"):
        rank_columns(3, World(0, 4))


def test_sentence_shares_cover_the_batch_and_borrow_when_empty():
    batch = [9, 4, 7, 1, 3]
    parts = [share(batch, World(r, 2)) for r in range(2)]
    assert parts == [[9, 4, 7], [1, 3]] and not any(isinstance(p, Borrowed) for p in parts)
    small = [share([6], World(r, 3)) for r in range(3)]
    assert small[0] == [6] and not isinstance(small[0], Borrowed)
    assert all(isinstance(p, Borrowed) and p == [6] for p in small[1:])
    assert share(batch, World(0, 1)) is batch
