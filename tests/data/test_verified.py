"""Named corpora are checked against their sha256 once per file state (size, mtime)."""

from __future__ import annotations

import hashlib
import os

import pytest

from rnnlab.data.verified import verify_files
from rnnlab.errors import RnnlabError


def test_checked_once_then_cached_and_a_change_is_caught(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "input.txt"
    path.write_bytes(b"to be or not to be\n")
    expected = {"input.txt": hashlib.sha256(path.read_bytes()).hexdigest(), "other": None}
    files = {"input.txt": path}
    assert verify_files("demo", files, expected) == 1
    assert verify_files("demo", files, expected) == 0  # cached: size and mtime unchanged
    path.write_bytes(b"to be or not to bE\n")  # same size, new content and mtime
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(RnnlabError, match="demo.*has sha256.*download it again"):
        verify_files("demo", files, expected)


def test_unwritable_cache_still_verifies(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("RNNLAB_CACHE", str(blocker))  # a file where the folder should be
    path = tmp_path / "input.txt"
    path.write_bytes(b"abc")
    expected = {"input.txt": hashlib.sha256(b"abc").hexdigest()}
    assert verify_files("demo", {"input.txt": path}, expected) == 1
    assert verify_files("demo", {"input.txt": path}, expected) == 1
