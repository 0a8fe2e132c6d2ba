"""One torch thread for these tests: the machine they run on is shared, and small models run
slower with two threads competing for a busy core than with one."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
