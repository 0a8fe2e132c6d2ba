"""The micro-batching worker on its own, with a fake model: batches form under load, keys never
mix, the queue is bounded, one failing request does not fail the others, streams interleave."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rnnlab.errors import RnnlabError
from rnnlab.serve.batching import ModelWorker, QueueFull
from rnnlab.serve.limits import ServeLimits


class Recorder:
    """A fake model: doubles numbers, remembers every batch, can be held, fails on -1."""

    def __init__(self) -> None:
        self.batches: list[tuple[object, list[int]]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, key, payloads):
        self.release.wait(5)
        if -1 in payloads:
            raise RnnlabError("minus one is refused")
        self.batches.append((key, list(payloads)))
        return [2 * p for p in payloads]


def _worker(model, **limits) -> ModelWorker:
    return ModelWorker("fake", model, ServeLimits(**limits))


def test_concurrent_requests_share_batches_and_keys_never_mix():
    model = Recorder()
    worker = _worker(model, max_batch=4, batch_wait_ms=50)

    async def go():
        return await asyncio.gather(*(worker.submit(i % 2, i) for i in range(8)))

    try:
        assert asyncio.run(go()) == [2 * i for i in range(8)]
    finally:
        worker.close()
    assert sorted(p for _, batch in model.batches for p in batch) == list(range(8))
    for key, batch in model.batches:
        assert all(p % 2 == key for p in batch) and len(batch) <= 4
    assert len(model.batches) < 8  # some requests were answered together


def test_max_batch_one_runs_each_request_alone():
    model = Recorder()
    worker = _worker(model, max_batch=1, batch_wait_ms=50)

    async def go():
        return await asyncio.gather(*(worker.submit(None, i) for i in range(5)))

    try:
        assert asyncio.run(go()) == [0, 2, 4, 6, 8]
    finally:
        worker.close()
    assert [len(batch) for _, batch in model.batches] == [1] * 5


def test_a_failing_request_gets_its_own_error_and_the_others_their_answers():
    model = Recorder()
    worker = _worker(model, max_batch=8, batch_wait_ms=50)

    async def go():
        return await asyncio.gather(worker.submit(None, 1), worker.submit(None, -1),
                                    worker.submit(None, 3), return_exceptions=True)

    try:
        first, failed, third = asyncio.run(go())
    finally:
        worker.close()
    assert (first, third) == (2, 6)
    assert isinstance(failed, RnnlabError) and "minus one" in str(failed)


def test_the_queue_is_bounded():
    model = Recorder()
    model.release.clear()  # the first request holds the worker
    worker = _worker(model, max_queue=2, batch_wait_ms=0)

    async def go():
        held = [asyncio.ensure_future(worker.submit(None, i)) for i in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match="busy"):
            await worker.submit(None, 9)
        model.release.set()
        return await asyncio.gather(*held)

    try:
        assert asyncio.run(go()) == [0, 2]
        assert worker.waiting == 0
    finally:
        worker.close()


def test_streams_yield_in_order_interleave_and_are_dropped_when_the_reader_leaves():
    model = Recorder()
    worker = _worker(model, batch_wait_ms=0)

    async def go():
        async def read(n):
            return [item async for item in worker.open_stream(lambda: iter(range(n)))]

        streams = asyncio.gather(read(30), read(20))
        answer = await worker.submit(None, 5)  # a batch between the streams' tokens
        first, second = await streams
        endless = worker.open_stream(lambda: iter(int, 1))  # never ends by itself
        assert await endless.__anext__() == 0
        await endless.aclose()
        for _ in range(100):
            if worker.waiting == 0:
                break
            await asyncio.sleep(0.01)
        return answer, first, second

    try:
        answer, first, second = asyncio.run(go())
        assert worker.waiting == 0  # the endless stream was dropped
    finally:
        worker.close()
    assert answer == 10 and first == list(range(30)) and second == list(range(20))


def test_a_stream_that_fails_raises_in_the_reader():
    worker = _worker(Recorder())

    def broken():
        yield "a"
        raise RnnlabError("the model broke")

    async def go():
        return [item async for item in worker.open_stream(broken)]

    try:
        with pytest.raises(RnnlabError, match="broke"):
            asyncio.run(go())
    finally:
        worker.close()


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"max_queue": 0}, {"batch_wait_ms": -1}])
def test_limits_refuse_nonsense(bad):
    with pytest.raises(RnnlabError):
        ServeLimits(**bad)


def test_a_lone_request_does_not_wait_for_company():
    """With nobody else about, a request runs at once, not after batch_wait_ms; once requests
    arrive together they are batched again."""
    import time

    model = Recorder()
    worker = _worker(model, max_batch=8, batch_wait_ms=400)

    async def alone():
        started = time.perf_counter()
        assert await worker.submit(None, 3) == 6
        return time.perf_counter() - started

    async def together():
        return await asyncio.gather(*(worker.submit(None, i) for i in range(6)))

    try:
        assert max(asyncio.run(alone()) for _ in range(3)) < 0.2  # not the 0.4 s wait
        assert asyncio.run(together()) == [2 * i for i in range(6)]
    finally:
        worker.close()
    assert [len(batch) for _, batch in model.batches[:3]] == [1, 1, 1]
    assert len(model.batches) - 3 < 6  # the six shared batches
