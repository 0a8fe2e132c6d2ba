"""Micro-batching: one worker thread per model gathers concurrent requests into batches.

Inference runs off the event loop, in the model's own thread, so a slow batch never blocks the
server, and one thread per model keeps torch from running two forwards of one model at once.
The thread calls `run_batch`: the adapter's own (`--model-workers thread`) or a proxy that hands
the batch to the model's process and waits, without the interpreter lock, for the answer
(process.py). Whatever queued while the last batch ran joins the next one, up to `max_batch`,
so under load batches fill by themselves; the first request of a batch may also wait up to
`batch_wait_ms` (none by default, as Triton's dynamic batcher) for others with the same key
(the same beam, say), when others are about (the last batch had more than one request, or more
are queued; a lone client is not kept waiting) - the scheme of TF Serving's
`batch_timeout_micros` and TorchServe's `maxBatchDelay`. Streams (LM sampling) share the
thread: between batches the worker advances every open stream by one token, so streams and
batches take turns.

A request that cannot be queued (more than `max_queue` waiting) raises `QueueFull`, which the
app turns into a 503. If a batch fails, its requests run again one by one, so one bad request
gets its own error and does not fail the others.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rnnlab.serve.limits import ServeLimits

log = logging.getLogger(__name__)
RunBatch = Callable[[Hashable, list[Any]], list[Any]]
IDLE_POLL_S = 0.1  # how often an idle worker looks whether it should stop


class QueueFull(Exception):
    """More requests wait for this model than the server's --max-queue allows."""


@dataclass(eq=False)
class _Job:
    key: Hashable
    payload: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


@dataclass(eq=False)
class _Stream:
    make_iterator: Callable[[], Iterator[Any]]
    events: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    cancelled: threading.Event = field(default_factory=threading.Event)
    iterator: Iterator[Any] | None = None


class ModelWorker:
    """The thread that runs one model: `await submit(key, payload)` for batched work,
    `async for item in open_stream(make_iterator)` for token-by-token work."""

    def __init__(self, name: str, run_batch: RunBatch, limits: ServeLimits) -> None:
        self.name, self.run_batch, self.limits = name, run_batch, limits
        self._inbox: queue.Queue[_Job | _Stream] = queue.Queue()
        self._set_aside: deque[_Job] = deque()  # taken while gathering, but of another key
        self._streams: list[_Stream] = []
        self._waiting = 0  # jobs and streams not finished yet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_batch = 0  # requests in the last batch gathered
        self.batches_run = 0
        self.requests_run = 0
        self._thread = threading.Thread(target=self._loop, name=f"rnnlab-serve-{name}",
                                        daemon=True)
        self._thread.start()

    # -- the event loop's side ----------------------------------------------------------------

    def _reserve(self) -> None:
        with self._lock:
            if self._waiting >= self.limits.max_queue:
                raise QueueFull(f"model {self.name!r} is busy: {self._waiting} requests are "
                                "waiting; try again shortly")
            self._waiting += 1

    def _release(self) -> None:
        with self._lock:
            self._waiting -= 1

    @property
    def waiting(self) -> int:
        return self._waiting

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """The result of `run_batch(key, [..., payload, ...])` for this payload."""
        self._reserve()
        loop = asyncio.get_running_loop()
        job = _Job(key, payload, loop.create_future(), loop)
        self._inbox.put(job)
        return await job.future

    def open_stream(self, make_iterator: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
        """The items of `make_iterator()`, made in the worker thread one at a time. Queued (or
        refused with QueueFull) now, before a response starts; read with `async for`."""
        self._reserve()
        loop = asyncio.get_running_loop()
        stream = _Stream(make_iterator, asyncio.Queue(), loop)
        self._inbox.put(stream)
        return self._read(stream)

    @staticmethod
    async def _read(stream: _Stream) -> AsyncIterator[Any]:
        try:
            while True:
                kind, value = await stream.events.get()
                if kind == "item":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            stream.cancelled.set()  # the client left, or the stream ended: the worker drops it

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    # -- the worker thread's side -------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            batch = self._gather(0.0 if self._streams else IDLE_POLL_S)
            if batch:
                self._run(batch)
            self._advance_streams()

    def _next(self, timeout: float) -> _Job | None:
        """The next job, or None after `timeout` (0: only what is queued already); streams
        met on the way are opened."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._inbox.get(timeout=remaining) if remaining > 0 \
                    else self._inbox.get_nowait()
            except queue.Empty:
                return None
            if isinstance(item, _Stream):
                self._streams.append(item)
                if timeout == 0.0:
                    continue
                return None  # a new stream should start now, not after the wait
            if item.future.cancelled():  # the client left while it waited
                self._release()
                continue
            return item

    def _gather(self, timeout: float) -> list[_Job]:
        first = self._set_aside.popleft() if self._set_aside else self._next(timeout)
        if first is None:
            return []
        batch = [first]
        for job in list(self._set_aside):
            if len(batch) < self.limits.max_batch and job.key == first.key:
                self._set_aside.remove(job)
                batch.append(job)
        # Wait for company only where there is some: the last batch held more than one request
        # or more are queued already. A lone client's request then runs at once instead of
        # paying batch_wait_ms for others that never come (it halved one client's requests/s:
        # benchmarks/results/serve_load_i15c.md); under load batches grow back by themselves,
        # since requests queue while a batch runs.
        company = self._last_batch > 1 or len(batch) > 1 or not self._inbox.empty()
        deadline = time.monotonic() + (self.limits.batch_wait_ms / 1000 if company else 0.0)
        while len(batch) < self.limits.max_batch:
            job = self._next(max(deadline - time.monotonic(), 0.0))
            if job is None:
                break
            (batch if job.key == first.key else self._set_aside).append(job)
        self._last_batch = len(batch)
        return batch

    def _run(self, batch: list[_Job]) -> None:
        try:
            results = self.run_batch(batch[0].key, [job.payload for job in batch])
        except Exception as err:  # noqa: BLE001 - handed to the request(s) that caused it
            if len(batch) == 1:
                self._finish(batch[0], None, err)
                return
            for job in batch:  # find which request failed; the others still get answers
                self._run([job])
            return
        self.batches_run += 1
        self.requests_run += len(batch)
        for job, result in zip(batch, results, strict=True):
            self._finish(job, result, None)

    def _finish(self, job: _Job, result: Any, error: BaseException | None) -> None:
        self._release()

        def settle() -> None:
            if job.future.done():
                return
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

        _call_soon(job.loop, settle)

    def _advance_streams(self) -> None:
        for stream in list(self._streams):
            if stream.cancelled.is_set():
                self._close_stream(stream, None)
                continue
            try:
                if stream.iterator is None:
                    stream.iterator = iter(stream.make_iterator())
                event = ("item", next(stream.iterator))
            except StopIteration:
                self._close_stream(stream, ("end", None))
                continue
            except Exception as err:  # noqa: BLE001 - sent to the client as an error event
                self._close_stream(stream, ("error", err))
                continue
            _call_soon(stream.loop, stream.events.put_nowait, event)

    def _close_stream(self, stream: _Stream, event: tuple[str, Any] | None) -> None:
        self._streams.remove(stream)
        self._release()
        close = getattr(stream.iterator, "close", None)
        if close is not None:
            close()
        if event is not None:
            _call_soon(stream.loop, stream.events.put_nowait, event)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """Run `callback` in the event loop's thread; a loop that has closed (the server is
    shutting down) has nobody left to tell."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        log.debug("event loop closed; a result was dropped")
