"""Where training reports go: a JSON-lines log in the run directory (and, with --tensorboard,
TensorBoard event files beside it, made from the very same records) and a tqdm progress bar."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rnnlab.errors import RnnlabError

LOG_FILE = "log.jsonl"
EVENT_FILES = "events.out.tfevents.*"  # the names torch's SummaryWriter gives its files
# Which records TensorBoard shows, under which prefix; their numbers become scalars.
TENSORBOARD_KINDS = {"train": "train", "eval": "dev"}
NOT_SCALARS = ("step", "epoch", "time")


class RunLog:
    """Appends one JSON object per line; `plots.py` reads the file after (or during) the run.
    Every record goes through `write`, which also hands it to TensorBoard when asked."""

    def __init__(self, run_dir: Path, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / LOG_FILE
        self.tensorboard = TensorBoardLog(Path(run_dir)) if tensorboard else None

    def write(self, kind: str, **values: Any) -> None:
        record = {"kind": kind, "time": round(time.time(), 3), **values}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard:
            self.tensorboard.write(record)

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()

    def truncate_after(self, step: int) -> None:
        """On resume, drop records written after the checkpoint's step (they will be redone),
        and any line a killed writer left half-written; TensorBoard forgets them too."""
        if self.tensorboard:
            self.tensorboard.purge_after(step)
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


class TensorBoardLog:
    """The log's train and eval records as TensorBoard scalars (`train/loss`, `dev/accuracy`,
    ...), at the record's step and wall time; written through torch's SummaryWriter, opened at
    the first record so that a resumed run can first say which steps to purge."""

    FLUSH_SECONDS = 5  # "live": TensorBoard sees a record within seconds, not the default 120

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise RnnlabError("--tensorboard needs the tensorboard package: pip install "
                              "tensorboard (or rnnlab[tensorboard])") from err
        self._make_writer = SummaryWriter
        self.run_dir, self.writer, self.purge_step = run_dir, None, None

    def purge_after(self, step: int) -> None:
        """Steps after `step` will be redone: TensorBoard drops what earlier files hold there."""
        self.purge_step = step + 1

    def write(self, record: dict[str, Any]) -> None:
        prefix = TENSORBOARD_KINDS.get(record["kind"])
        if prefix is None:
            return
        if self.writer is None:
            self.writer = self._make_writer(str(self.run_dir), purge_step=self.purge_step,
                                            flush_secs=self.FLUSH_SECONDS)
        for name, value in record.items():
            if name not in NOT_SCALARS and isinstance(value, int | float) \
                    and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{name}", value, global_step=record["step"],
                                       walltime=record["time"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / LOG_FILE
    return _records(path) if path.exists() else []


def progress_bar(total: int | None, initial: int = 0, enabled: bool = True) -> tqdm:
    """A progress bar on stderr (stdout stays clean for pipes); silent when not enabled."""
    return tqdm(total=total, initial=initial, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, unit="step", leave=False)
