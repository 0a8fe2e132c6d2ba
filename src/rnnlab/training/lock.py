"""One writer per run folder: an exclusive `flock` on `run_dir/.lock` for the run's lifetime.

Two trainings into one folder (or two `--resume`s) would interleave their logs and mix their
weights, so the second writer is refused with the holder's PID. `flock` (not a PID file) is the
mechanism because the kernel drops the lock when its holder dies, even by `kill -9`: a stale lock
file never blocks a later start. Readers (`sample`, `eval`) take no lock.

The lock is re-entrant inside one process (`open_run` takes it, the Trainer takes it again), and
held until every holder released it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rnnlab.errors import RnnlabError

LOCK_FILE = ".lock"

_held: dict[Path, tuple[int, int]] = {}  # resolved run dir -> (file descriptor, holders)


def acquire_run_lock(run_dir: Path) -> None:
    """Take the writer lock of `run_dir` (created if needed), or raise naming its holder."""
    key = Path(run_dir).resolve()
    if key in _held:
        fd, holders = _held[key]
        _held[key] = (fd, holders + 1)
        return
    if key.exists() and not key.is_dir():
        raise RnnlabError(f"--run-dir {run_dir} is a file, not a directory")
    key.mkdir(parents=True, exist_ok=True)
    fd = os.open(key / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RnnlabError(f"{run_dir} is being written by another rnnlab process (PID {holder}); "
                          "wait for it to finish or choose another --run-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = (fd, 1)


def release_run_lock(run_dir: Path) -> None:
    """Give back one hold; the lock goes when the last holder releases it."""
    key = Path(run_dir).resolve()
    if key not in _held:
        return
    fd, holders = _held[key]
    if holders > 1:
        _held[key] = (fd, holders - 1)
        return
    del _held[key]
    os.close(fd)  # closing the only descriptor drops the flock


def refuse_if_written(run_dir: Path) -> None:
    """Raise, naming the PID, when another process holds the writer lock of `run_dir`; take
    nothing (a start checks this before loading its data, then locks at its first write)."""
    key = Path(run_dir).resolve()
    if key in _held or not (key / LOCK_FILE).exists():
        return
    acquire_run_lock(key)
    release_run_lock(key)


def holds_run_lock(run_dir: Path) -> bool:
    return Path(run_dir).resolve() in _held
