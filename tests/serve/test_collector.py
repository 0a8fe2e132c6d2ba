"""A running server keeps what it loaded out of the cyclic garbage collector's full passes."""

import gc

from fastapi.testclient import TestClient

from rnnlab.serve.app import create_app


def test_a_running_server_freezes_what_it_loaded_and_thaws_when_it_stops(models):
    before = gc.get_freeze_count()
    with TestClient(create_app(models)) as client:
        assert client.get("/health").status_code == 200
        frozen = gc.get_freeze_count()
        assert frozen > before
        with TestClient(create_app(models)):  # a second app in the same process
            assert gc.get_freeze_count() >= frozen
        assert gc.get_freeze_count() >= frozen  # the first app still runs: still frozen
    if before == 0:
        assert gc.get_freeze_count() == 0
