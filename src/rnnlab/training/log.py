"""Where training reports go: a JSON-lines log in the run directory and a tqdm progress bar."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

LOG_FILE = "log.jsonl"


class RunLog:
    """Appends one JSON object per line; `plots.py` reads the file after (or during) the run."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOG_FILE

    def write(self, kind: str, **values: Any) -> None:
        record = {"kind": kind, "time": round(time.time(), 3), **values}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop records written after the checkpoint's step (they will be redone),
        and any line a killed writer left half-written."""
        if not self.path.exists():
            return
        kept = [json.dumps(record) for record in _records(self.path)
                if record.get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept), "utf-8")


def _records(path: Path) -> list[dict[str, Any]]:
    """The log's records; a line that is not a JSON object (torn by a kill, or damaged) is
    skipped: the log reports a run, the checkpoints are what resumes it."""
    records = []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / LOG_FILE
    return _records(path) if path.exists() else []


def progress_bar(total: int | None, initial: int = 0, enabled: bool = True) -> tqdm:
    """A progress bar on stderr (stdout stays clean for pipes); silent when not enabled."""
    return tqdm(total=total, initial=initial, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, unit="step", leave=False)
