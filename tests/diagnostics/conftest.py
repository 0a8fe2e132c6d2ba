"""One torch thread for these tests: the machine they run on is shared, and small models run
slower with two threads competing for a busy core than with one."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every diagnostics test at one thread (tests/conftest.py's one_thread)."""
