"""benchmarks/records.py: every result file gets the same environment record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_save_record_writes_json_and_markdown_with_the_environment(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import records

    monkeypatch.setattr(records, "RESULTS", tmp_path)
    env = records.environment()
    records.save_record("demo", {"rows": [1, 2]}, "# demo\n\n| a |\n", env)
    record = json.loads((tmp_path / "demo.json").read_text())
    environment = record["environment"]
    assert record["rows"] == [1, 2]
    for key in ("command", "git_commit", "torch", "threads", "load_before", "load_after",
                "seconds"):
        assert key in environment, key
    assert environment["command"].startswith("python ")
    markdown = (tmp_path / "demo.md").read_text()
    assert markdown.startswith("# demo") and "load average" in markdown
    assert f"torch {environment['torch']}" in markdown
    sys.modules.pop("records", None)
