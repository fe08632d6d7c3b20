"""When a profiled flow should stop: after `--duration` seconds, or once a pipeline ran `--runs` cycles.

The deadline uses CLOCK_MONOTONIC, which is the same clock in every process of the
machine, so forked pipeline processes stop on time without being told.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["RunControl", "current_control", "set_current_control"]


class RunControl:
    """The stop conditions of one profiled run."""

    def __init__(
        self,
        duration_s: float | None = None,
        runs: int | None = None,
        cycles_done: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.runs = runs
        self.started = clock()
        self.deadline = self.started + duration_s if duration_s is not None else None
        self._cycles_done = cycles_done or (lambda pipeline: 0)
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Stop every pipeline of this process at its next boundary."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set() or (self.deadline is not None and self.clock() >= self.deadline)

    def should_stop(self, pipeline: str | None = None) -> bool:
        """True once the run is over, or once `pipeline` completed its `--runs` cycles."""
        if self.stop_requested:
            return True
        return pipeline is not None and self.runs is not None and self._cycles_done(pipeline) >= self.runs

    def will_stop_within(self, pipeline: str | None, seconds: float) -> bool:
        """True when the run would be over by the time a `seconds` sleep ends."""
        if self.should_stop(pipeline):
            return True
        return self.deadline is not None and self.clock() + seconds >= self.deadline


_current: RunControl | None = None


def current_control() -> RunControl | None:
    """The stop conditions of the run in progress, or None outside wiredprof."""
    return _current


def set_current_control(control: RunControl | None) -> None:
    global _current
    _current = control
