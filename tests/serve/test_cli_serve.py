"""`rnnlab serve` as a user runs it: the app it builds (uvicorn itself is replaced by a stub
here; test_page.py starts the real server) and one-line errors for bad arguments."""

from __future__ import annotations

import pytest
import uvicorn
from fastapi.testclient import TestClient

from rnnlab.cli.main import main


@pytest.fixture
def started(monkeypatch):
    calls = {}

    def fake_run(app, host, port, log_level):
        calls.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    yield calls
    if "app" in calls:
        calls["app"].state.close()


def test_serve_builds_the_app_with_names_limits_and_token(runs, started, monkeypatch):
    monkeypatch.setenv("RNNLAB_SERVE_TOKEN", "from-env")
    code = main(["serve", str(runs["sentiment"]), str(runs["chars"]), "--name", "sst",
                 "--name", "lm", "--max-batch", "4", "--max-beam", "3", "--port", "8123",
                 "--threads", "1"])
    assert code == 0 and started["host"] == "127.0.0.1" and started["port"] == 8123
    app = started["app"]
    assert app.state.limits.max_batch == 4 and app.state.limits.max_beam == 3
    assert set(app.state.processes) == {"sst", "lm"}  # --model-workers process by default
    client = TestClient(app)
    assert client.get("/health").json()["models"] == ["sst", "lm"]
    assert client.get("/models").status_code == 401
    listing = client.get("/models", headers={"Authorization": "Bearer from-env"}).json()
    assert [m["name"] for m in listing["models"]] == ["sst", "lm"]


def test_serve_can_keep_the_models_in_its_own_process(runs, started):
    assert main(["serve", str(runs["sentiment"]), "--model-workers", "thread"]) == 0
    assert started["app"].state.processes == {}


@pytest.mark.parametrize(("args", "words"), [
    (["{tmp}"], "not a run directory"),
    (["{sentiment}", "--name", "a", "--name", "b"], "one name per run"),
    (["{sentiment}", "--name", "../etc"], "not usable in a URL"),
    (["{sentiment}", "{sentiment}"], "both named"),
    (["{sentiment}", "--port", "70000"], "--port"),
    (["{sentiment}", "--max-batch", "0"], "--max-batch: must be at least 1"),
])
def test_bad_arguments_are_one_line_errors(runs, started, tmp_path, capsys, args, words):
    paths = {"tmp": tmp_path, "sentiment": runs["sentiment"]}
    try:
        code = main(["serve", *(a.format(**paths) for a in args)])
    except SystemExit as stop:  # refused by argparse, before any work
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error:") and words in err and "\n" not in err
    assert "app" not in started
