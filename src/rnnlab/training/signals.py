"""Stop requests (Ctrl-C, SIGTERM, SIGHUP) noted by a flag and acted on between steps.

A KeyboardInterrupt raised wherever the signal lands (inside forward, backward or
`optimizer.step()`) would leave a step half done: its weights, RNG or carried state belong to
step N while the counter still says N-1, and a checkpoint of that mix does not resume exactly.
So while training, these signals only set a flag; the Trainer looks at it between steps, saves
the last completed step and raises `TrainingInterrupted`. A second signal means "now": it raises
KeyboardInterrupt at once (the last checkpoint on disk is intact either way). `timeout`,
containers and cluster schedulers send SIGTERM, a closed terminal SIGHUP: both count as Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                     if s is not None)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint of its last completed step."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class StopRequests:
    """Context manager: while inside, STOP_SIGNALS set `signum` instead of interrupting.

    Signal handlers exist only in the main thread; elsewhere this does nothing and signals keep
    their usual effect.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None
