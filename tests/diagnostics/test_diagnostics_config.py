"""The diagnostics' settings are checked in the library (the CLI only builds them from flags)."""

from __future__ import annotations

import pytest

from rnnlab.diagnostics.gradients import GradientConfig, gradient_study
from rnnlab.diagnostics.memory import MemoryConfig, memory_study
from rnnlab.errors import RnnlabError


@pytest.mark.parametrize(("make", "message"), [
    (lambda: GradientConfig(cells=("rnn", "nope")), "unknown cell 'nope'"),
    (lambda: GradientConfig(length=0), "--length must be at least 1"),
    (lambda: gradient_study(["lstm"], hidden=0), "--hidden must be at least 1"),
    (lambda: MemoryConfig(task="sorting"), "unknown memory task 'sorting'"),
    (lambda: MemoryConfig(lr=0.0), "--lr must be positive"),
    (lambda: memory_study(["rnn"], [1], MemoryConfig(steps=1)), "--lengths must be integers >= 2"),
])
def test_bad_settings_are_one_clear_error(make, message):
    with pytest.raises(RnnlabError, match=message):
        make()


def test_cells_are_kept_as_a_tuple():
    assert GradientConfig(cells=["rnn", "gru"]).cells == ("rnn", "gru")
