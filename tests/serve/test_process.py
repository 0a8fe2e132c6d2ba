"""`--model-workers process`: each model's batches run in a child process of its own. The oracle
is the same app with the batches in a thread of the server's process (`test_api.py` checks that
one against the CLI's run classes): both answer every task alike. And a child that dies, or
cannot load its run, fails one request or the start, never the server."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from rnnlab.errors import RnnlabError
from rnnlab.serve.app import create_app, default_model_threads
from rnnlab.serve.models import load_models
from rnnlab.serve.process import ModelProcess

REQUESTS = [
    ("/models/sentiment/classify", {"texts": ["a gripping , funny film", "dull"]}),
    ("/models/ner/tag", {"sentences": ["EU rejects German call", "Peter Blackburn"]}),
    ("/models/de-en/translate", {"texts": ["ein hund läuft"], "beam": 2, "n_best": 2}),
    ("/models/chars/score", {"texts": ["line 3 says hello"]}),
]


@pytest.fixture(scope="module")
def in_processes(models):
    # as many threads as the thread it is compared with: a product split otherwise can differ
    # in the last bits
    app = create_app(models, model_workers="process", model_threads=torch.get_num_threads())
    with TestClient(app, raise_server_exceptions=False) as client:  # a 500 is answered
        yield client, app
    assert not any(p.pid and _alive(p.pid) for p in app.state.processes.values())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(("path", "body"), REQUESTS)
def test_a_model_in_its_own_process_answers_as_in_a_thread(models, in_processes, path, body):
    client, app = in_processes
    with TestClient(create_app(models, model_workers="thread")) as threaded:
        expected = threaded.post(path, json=body)
    answer = client.post(path, json=body)
    assert answer.status_code == expected.status_code == 200, answer.text
    assert answer.json() == expected.json()  # the same code on the same threads: the same bits
    name = path.split("/")[2]
    assert app.state.processes[name].pid != os.getpid()
    assert set(app.state.processes) == set(models)


def test_a_bad_request_is_still_a_4xx_from_the_child(in_processes):
    client, _ = in_processes
    reply = client.post("/models/de-en/translate", json={"texts": [""]})
    assert reply.status_code in (200, 422)  # whatever the thread answers, not a crash
    reply = client.post("/models/sentiment/classify", json={"texts": [1]})
    assert reply.status_code == 422


def test_a_child_that_dies_fails_one_request_and_starts_again(in_processes):
    client, app = in_processes
    process = app.state.processes["sentiment"]
    starts, pid = process.starts, process.pid
    os.kill(pid, signal.SIGKILL)
    body = {"texts": ["lovely acting"]}
    first = client.post("/models/sentiment/classify", json=body)
    assert first.status_code == 500 and "\n" not in first.json()["detail"]
    second = client.post("/models/sentiment/classify", json=body)
    assert second.status_code == 200 and second.json()["predictions"][0]["label"]
    assert process.starts == starts + 1 and process.pid != pid


def test_a_run_the_child_cannot_load_stops_the_start(runs, tmp_path):
    run = tmp_path / "sentiment"
    shutil.copytree(runs["sentiment"], run)
    served = load_models([run], device="cpu")  # loaded here; then its weights go
    for weights in run.rglob("*.safetensors"):
        weights.unlink()
    with pytest.raises(RnnlabError, match="could not be loaded in its process"):
        create_app(served, model_workers="process")


def test_model_processes_leave_a_core_to_the_event_loop(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert [default_model_threads(n) for n in (1, 2, 3, 7, 8)] == [7, 3, 2, 1, 1]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert default_model_threads(1) == 1


def test_an_unknown_kind_of_worker_is_refused(models):
    with pytest.raises(RnnlabError, match="model workers must be one of thread, process"):
        create_app(models, model_workers="fork")


class Sleepy:
    """An adapter for the child alone: echoes its payloads after `key` seconds; "exit" ends
    the child mid-batch."""

    def __init__(self, name, run_dir, info, device) -> None:  # noqa: ANN001 - as the adapters
        pass

    def run_batch(self, key, payloads):  # noqa: ANN001
        if key == "exit":
            os._exit(3)
        time.sleep(float(key))
        return payloads


def _sleepy() -> ModelProcess:
    process = ModelProcess(Sleepy, "sleepy", Path("."), {}, "cpu", 1)
    process.wait_ready()
    return process


def test_a_child_that_exits_mid_batch_is_reported_and_replaced():
    process = _sleepy()
    try:
        assert process.run_batch("0", [1, 2]) == [1, 2]
        with pytest.raises(RuntimeError, match=r"stopped \(exit status 3\)"):
            process.run_batch("exit", [1])
        assert process.run_batch("0", ["again"]) == ["again"] and process.starts == 2
    finally:
        process.close()


def test_closing_cuts_a_long_batch_short():
    process = _sleepy()
    failures = []

    def long_batch():
        try:
            process.run_batch("60", [1])
        except RuntimeError as err:
            failures.append(err)

    worker = threading.Thread(target=long_batch)
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    process.close(timeout=0.5)
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 10
    assert failures and "stopped" in str(failures[0])
