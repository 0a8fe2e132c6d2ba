"""A model's batched work in a process of its own (`rnnlab serve --model-workers process`).

In one process, the server's event loop and every model's worker thread share one interpreter
lock: a forward pass is a few hundred torch calls, each of which gives the lock up and must win
it back from the thread parsing and answering HTTP requests. Under load the two threads then
take turns instead of using two cores (a batch of 16 took 1.5x its time alone when the event
loop kept the lock busy 60% of the time), and batches only pay off in lockstep: the worker
waits while the loop answers a batch and reads the next. A child process has its own lock and
its own core: the loop answers one batch while the child computes the next.

The child is started with `spawn` (no state inherited from a process that has threads), loads
the run again with the adapter's own class, and answers `(key, payloads)` with the adapter's
`run_batch` over a pipe, the way TorchServe's and Triton's Python workers serve. Token-by-token
streams (LM sampling) stay in the server's process: they are one step at a time, not batches.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import threading
from collections.abc import Hashable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rnnlab.errors import RnnlabError

START_TIMEOUT_S = 300.0  # loading a large run on a busy machine
MODEL_WORKERS = ("thread", "process")  # `--model-workers`: where a model's batches run


class ModelProcess:
    """`run_batch(key, payloads)` of an adapter of class `adapter`, run in a child process.

    The child loads `run_dir` itself; a child that dies (killed, out of memory) fails the batch
    it held with a RuntimeError and is started again for the next one."""

    def __init__(self, adapter: type, name: str, run_dir: Path, info: dict[str, Any],
                 device: str, threads: int) -> None:
        self.name = name
        self._spec = (adapter, name, Path(run_dir), info, device, threads)
        self._lock = threading.Lock()  # one batch in flight: the pipe carries one exchange
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.starts = 0
        self._spawn()

    def _spawn(self) -> None:
        """Start the child; `wait_ready` waits for its model (so several load at once)."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_child_main, args=(child, self._spec), daemon=True,
                                  name=f"rnnlab-serve-{self.name}")
        process.start()
        child.close()  # the parent keeps one end, so EOF reaches it when the child dies
        self._process, self._conn = process, parent
        self._ready = False

    def wait_ready(self) -> None:
        """Block until the child has loaded its model; RnnlabError if it could not."""
        if self._ready:
            return
        process, conn = self._process, self._conn
        assert process is not None and conn is not None
        if not conn.poll(START_TIMEOUT_S):
            self._discard()
            raise RnnlabError(f"model {self.name!r}: its process did not start within "
                              f"{START_TIMEOUT_S:.0f} s")
        try:
            status, detail = conn.recv()
        except EOFError:
            process.join(5)
            status, detail = "error", f"its process exited with status {process.exitcode}"
        if status != "ready":
            self._discard()
            raise RnnlabError(f"model {self.name!r} could not be loaded in its process: {detail}")
        self._ready = True
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def run_batch(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        with self._lock:
            if self._conn is None:
                self._spawn()
            try:
                self.wait_ready()
            except RnnlabError as err:  # the server's failure, not the request's: a 500
                raise RuntimeError(str(err)) from err
            assert self._conn is not None
            try:
                self._conn.send((key, payloads))
                status, value = self._conn.recv()
            except (EOFError, OSError) as err:
                code = self._discard()
                raise RuntimeError(f"the process of model {self.name!r} stopped (exit status "
                                   f"{code}) while it ran a batch; it starts again with the "
                                   f"next request") from err
            except Exception as err:  # an answer that pickled in the child but not back here
                raise RuntimeError(f"model {self.name!r}: its process's answer could not be "
                                   f"read ({type(err).__name__}: {err})") from err
        if status == "error":
            raise value
        return value

    def _discard(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        return process.exitcode

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child: it exits when its end of the pipe closes. A batch still running
        after `timeout` is cut short by stopping the child under it (its requests get a 500)."""
        if self._lock.acquire(timeout=timeout):
            try:
                self._discard()
            finally:
                self._lock.release()
        elif self._process is not None:
            self._process.kill()


def start_processes(models: dict[str, Any], threads: int) -> dict[str, ModelProcess]:
    """A ModelProcess per served model (name -> adapter), started together so that they load
    at once; if one cannot load, those started are stopped and its RnnlabError raised."""
    processes: dict[str, ModelProcess] = {}
    try:
        for name, model in models.items():
            processes[name] = ModelProcess(type(model), name, model.run_dir, model.info,
                                           model.device, threads)
        for process in processes.values():
            process.wait_ready()
    except BaseException:
        for process in processes.values():
            process.close()
        raise
    return processes


def _child_main(conn: Connection, spec: tuple) -> None:
    """The child: load the adapter, then answer batches until the pipe closes."""
    adapter, name, run_dir, info, device, threads = spec
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's: it closes the pipe
    try:
        import torch

        torch.set_num_threads(threads)
        model = adapter(name, run_dir, info, device)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    gc.collect()
    gc.freeze()  # what is loaded lives as long as the child (see app.py's lifespan)
    conn.send(("ready", None))
    while True:
        try:
            key, payloads = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", model.run_batch(key, payloads))
        except Exception as err:  # noqa: BLE001 - raised again in the parent's request
            reply = ("error", err)
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - an answer or error that does not pickle
            conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}")))
