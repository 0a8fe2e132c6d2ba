"""Shared test set-up: the per-user data folder points into a temporary folder, so no test
reads or writes a user's real download cache (~/.cache/rnnlab/data)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_user_data_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
