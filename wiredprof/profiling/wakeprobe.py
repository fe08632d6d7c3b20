"""How long a thread of a flow's process waits to run again once it could: the GIL and a core.

A daemon thread of wiredprof's waits `INTERVAL_S` again and again and measures how late
each wake-up is. The lateness beyond the quietest wake-up seen (the timer's own slack) is
what any thread of that process pays each time it wakes from a blocking call: a free core
(the machine's load) and the GIL (the process's other threads running Python; with a busy
loop beside it, about one switch interval). An offloaded stage's reply wakes threads of
this process one after another (placement/model.py charges those wake-ups; the stage's own
GIL wait, which belonged to its Python work, leaves with it).

One probe per process of the flow: the runner starts it in its own process, a child
process of the flow starts its own (recorder.py) and reports it to the parent.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["WakeProbe", "WakeStats", "INTERVAL_S", "THREAD_NAME"]

INTERVAL_S = 0.02  # 50 wake-ups a second: a few microseconds of the GIL each
THREAD_NAME = "wiredprof-wake-probe"


@dataclass(frozen=True)
class WakeStats:
    """A probe's wake-ups: how many, their summed lateness and the smallest one (seconds)."""

    samples: int = 0
    late_sum_s: float = 0.0
    late_min_s: float = 0.0

    @property
    def excess_s(self) -> float:
        """Mean wait of a wake-up for the GIL and a core: the mean lateness beyond the quietest one."""
        if self.samples < 2:
            return 0.0
        return max(0.0, self.late_sum_s / self.samples - self.late_min_s)

    def merged(self, other: WakeStats) -> WakeStats:
        """Two processes' probes together (their wake-ups pooled)."""
        if not other.samples:
            return self
        if not self.samples:
            return other
        return WakeStats(self.samples + other.samples, self.late_sum_s + other.late_sum_s,
                         min(self.late_min_s, other.late_min_s))


class WakeProbe:
    """The probe thread of one process: `start`, then `stop` returns its `WakeStats`."""

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples = 0
        self._late_sum = 0.0
        self._late_min = float("inf")

    def start(self) -> WakeProbe:
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval, clock, stop = self.interval_s, self._clock, self._stop
        while True:
            t0 = clock()
            if stop.wait(interval):
                return
            late = clock() - t0 - interval
            if late < 0.0:
                late = 0.0
            self._samples += 1
            self._late_sum += late
            if late < self._late_min:
                self._late_min = late

    def stats(self) -> WakeStats:
        """The wake-ups so far (the probe goes on)."""
        n = self._samples
        return WakeStats(n, self._late_sum, self._late_min if n else 0.0)

    def stop(self) -> WakeStats:
        """End the probe thread (bounded wait) and return its figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return self.stats()
