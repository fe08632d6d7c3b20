"""How long a thread of a flow's process waits to run again once it could: the GIL and a core.

A daemon thread of wiredprof's waits `INTERVAL_S` again and again and measures how late
each wake-up is. The lateness beyond the timer's own slack (the quietest wake-up, capped) is
what any thread of that process pays each time it wakes from a blocking call: a free core
(the machine's load) and the GIL (the process's other threads running Python; with a busy
loop beside it, about one switch interval). An offloaded stage's reply wakes threads of
this process one after another (placement/model.py charges those wake-ups; the stage's own
GIL wait, which belonged to its Python work, leaves with it).

One probe per process of the flow: the runner starts it in its own process, a child
process of the flow starts its own (recorder.py) and reports it to the parent. Each
wake-up is also counted against the stages in progress in the process at that moment:
a stage's own CPU use can be what delays the wake-ups (a CPU quota it exhausts), and that
leaves with the stage, so the planner takes the wake-ups while it was not running.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

__all__ = ["WakeProbe", "WakeStats", "INTERVAL_S", "THREAD_NAME"]

INTERVAL_S = 0.02  # 50 wake-ups a second: a few microseconds of the GIL each
# The timer's own slack (Linux: 50 us by default) is the quietest wake-up, but never more than
# this: beside a thread that never lets the GIL go every wake-up waits a switch interval.
SLACK_CAP_S = 0.0001
THREAD_NAME = "wiredprof-wake-probe"


@dataclass(frozen=True)
class WakeStats:
    """A probe's wake-ups: how many, their summed lateness and the smallest one (seconds)."""

    samples: int = 0
    late_sum_s: float = 0.0
    late_min_s: float = 0.0
    # stage number -> (wake-ups while it was in progress in the process, their summed lateness)
    during: dict[int, tuple[int, float]] = field(default_factory=dict)

    @property
    def excess_s(self) -> float:
        """Mean wait of a wake-up for the GIL and a core: the mean lateness beyond the timer's slack."""
        if self.samples < 2:
            return 0.0
        return max(0.0, self.late_sum_s / self.samples - min(self.late_min_s, SLACK_CAP_S))

    def excess_without_s(self, stages: Iterable[int]) -> tuple[float, int]:
        """(mean wait of a wake-up while none of `stages` was in progress, how many such wake-ups)."""
        n, total = self.samples, self.late_sum_s
        for number in set(stages):
            k, late = self.during.get(number, (0, 0.0))
            n, total = n - k, total - late
        if n < 2:
            return 0.0, max(n, 0)
        return max(0.0, total / n - min(self.late_min_s, SLACK_CAP_S)), n

    def merged(self, other: WakeStats) -> WakeStats:
        """Two processes' probes together (their wake-ups pooled)."""
        if not other.samples:
            return self
        if not self.samples:
            return other
        during = dict(self.during)
        for number, (k, late) in other.during.items():
            k0, late0 = during.get(number, (0, 0.0))
            during[number] = (k0 + k, late0 + late)
        return WakeStats(self.samples + other.samples, self.late_sum_s + other.late_sum_s,
                         min(self.late_min_s, other.late_min_s), during)


class WakeProbe:
    """The probe thread of one process: `start`, then `stop` returns its `WakeStats`.

    `active()` names the stages in progress in this process (their numbers), read at each wake-up.
    """

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.perf_counter,
                 active: Callable[[], Iterable[int]] | None = None) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._active = active
        self._during: dict[int, list[float]] = {}
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
        interval, clock, stop, active, during = self.interval_s, self._clock, self._stop, self._active, self._during
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
            if active is not None:
                for number in active():
                    d = during.get(number)
                    if d is None:
                        during[number] = [1, late]
                    else:
                        d[0] += 1
                        d[1] += late

    def stats(self) -> WakeStats:
        """The wake-ups so far (the probe goes on)."""
        n = self._samples
        during = {number: (int(d[0]), d[1]) for number, d in list(self._during.items())}
        return WakeStats(n, self._late_sum, self._late_min if n else 0.0, during)

    def stop(self) -> WakeStats:
        """End the probe thread (bounded wait) and return its figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return self.stats()
