"""Named corpora checked against their known sha256 before they are used, once per file state.

Hashing a corpus on every run would cost seconds for the large ones, so a file whose size and
modification time are those it had when last verified is trusted again (as `make` and `rsync`
trust size and mtime); anything else is hashed again. The record lives in the user's cache
folder (`$RNNLAB_CACHE`, else `$XDG_CACHE_HOME/rnnlab`, else `~/.cache/rnnlab`); when that
folder cannot be written, files are simply hashed every time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rnnlab.data.io import sha256_file
from rnnlab.errors import RnnlabError

CACHE_FILE = "verified.json"


def cache_path() -> Path:
    explicit = os.environ.get("RNNLAB_CACHE")
    if explicit:
        return Path(explicit).expanduser() / CACHE_FILE
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab" / CACHE_FILE


def _load() -> dict[str, list]:
    try:
        record = json.loads(cache_path().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _save(record: dict[str, list]) -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True), "utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: verification still happens, only uncached


def verify_files(name: str, files: dict[str, Path], expected: dict[str, str | None]) -> int:
    """Check each file with a known checksum; return how many were hashed (0: all cached).
    A mismatch raises, naming the file and how to get a good copy."""
    record, hashed, changed = _load(), 0, False
    for fname, path in files.items():
        want = expected.get(fname)
        if want is None:
            continue
        stat = Path(path).stat()
        key = str(Path(path).resolve())
        state = [stat.st_size, stat.st_mtime_ns, want]
        if record.get(key) == state:
            continue
        hashed += 1
        actual = sha256_file(path)
        if actual != want:
            raise RnnlabError(f"corpus {name!r}: {path} has sha256 {actual}, expected {want} "
                              f"(damaged or replaced); download it again with `rnnlab data "
                              f"download {name}`")
        record[key], changed = state, True
    if changed:
        _save(record)
    return hashed
