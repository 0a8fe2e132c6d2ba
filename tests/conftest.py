"""Shared test set-up: the per-user data folder points into a temporary folder, so no test
reads or writes a user's real download cache (~/.cache/rnnlab/data)."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.cpp_extension import get_default_build_root

from rnnlab.nn import native

# The compiled recurrences (rnnlab.nn.native) are built once per machine, not once per test
# session: keep torch's extension cache out of the temporary XDG_CACHE_HOME set below.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", get_default_build_root())


@pytest.fixture(autouse=True)
def _private_user_data_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(scope="session", autouse=True)
def _compiled_recurrences():
    """Build the compiled time loops once, up front: not inside a timed test, nor in the
    subprocesses (CLI runs, torchrun workers) that tests start."""
    native.available()


@pytest.fixture
def one_thread():
    """One torch thread for the test (modules opt in with `usefixtures("one_thread")`): the
    machine is shared, and OpenMP's spin-waits make two threads far slower under load on tiny
    tensors; some paths (the compiled loops' step product) serve one thread only."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
