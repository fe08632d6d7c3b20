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

Reference rounds: once every `REF_INTERVAL_S` of wall time while a stage is in progress, the
probe thread also times one round of `speedloop.reference_loop` (`REF_ITERATIONS` iterations,
about 8 ms of CPU on a current core: under 1 % of one) and counts its CPU against those stages
(by wall time, not by wake-ups: a throttled process wakes less often). That is
this process's CPU cost of a fixed piece of Python as the stage ran: the machine's speed at
that moment, a CPU quota's throttling, caches the flow's other work left cold, the GIL handed
back and forth. `hosts check` times the same loop on the host, and the planner sets the two
against each other (measured in a 21.5 % quota: the stage's CPU per unit of work and the
rounds' rose together, 5 % apart at most; a probe taken minutes later, alone, saw none of it).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar, cast

from wiredprof.speedloop import cpu_loop_times

__all__ = ["WakeProbe", "WakeStats", "INTERVAL_S", "THREAD_NAME", "REF_INTERVAL_S", "REF_ITERATIONS"]

INTERVAL_S = 0.02  # 50 wake-ups a second: a few microseconds of the GIL each
# The timer's own slack (Linux: 50 us by default) is the quietest wake-up, but never more than
# this: beside a thread that never lets the GIL go every wake-up waits a switch interval.
SLACK_CAP_S = 0.0001
THREAD_NAME = "wiredprof-wake-probe"
REF_INTERVAL_S = 1.0  # seconds between two reference rounds while a stage is in progress
REF_ITERATIONS = 100_000


@dataclass(frozen=True)
class WakeStats:
    """A probe's wake-ups: how many, their summed lateness and the smallest one (seconds)."""

    samples: int = 0
    late_sum_s: float = 0.0
    late_min_s: float = 0.0
    # stage number -> (wake-ups while it was in progress in the process, their summed lateness)
    during: dict[int, tuple[int, float]] = field(default_factory=dict)
    # stage number -> (reference rounds while it was in progress, their CPU seconds, their iterations)
    ref: dict[int, tuple[int, float, int]] = field(default_factory=dict)

    def ref_iteration_cpu_s(self, number: int) -> tuple[float, int]:
        """(this process's mean CPU seconds per reference-loop iteration while stage `number` ran, rounds)."""
        rounds, cpu, iterations = self.ref.get(number, (0, 0.0, 0))
        return (cpu / iterations if iterations else 0.0), rounds

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
        return WakeStats(self.samples + other.samples, self.late_sum_s + other.late_sum_s,
                         min(self.late_min_s, other.late_min_s), _summed(self.during, other.during),
                         _summed(self.ref, other.ref))


_T = TypeVar("_T", tuple[int, float], tuple[int, float, int])


def _summed(a: dict[int, _T], b: dict[int, _T]) -> dict[int, _T]:
    """Two per-stage tallies added up, field by field, stage by stage."""
    out = dict(a)
    for number, counts in b.items():
        mine = out.get(number)
        out[number] = counts if mine is None else cast(_T, tuple(x + y for x, y in zip(mine, counts)))
    return out


class WakeProbe:
    """The probe thread of one process: `start`, then `stop` returns its `WakeStats`.

    `active()` names the stages in progress in this process (their numbers), read at each wake-up.
    """

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.perf_counter,
                 active: Callable[[], Iterable[int]] | None = None, ref_interval_s: float | None = None,
                 ref_iterations: int | None = None) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._active = active
        self._during: dict[int, list[float]] = {}
        self.ref_interval_s = REF_INTERVAL_S if ref_interval_s is None else ref_interval_s
        self.ref_iterations = REF_ITERATIONS if ref_iterations is None else ref_iterations
        self._ref: dict[int, tuple[int, float, int]] = {}
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
        last_ref = clock()
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
                numbers = list(active())
                for number in numbers:
                    d = during.get(number)
                    if d is None:
                        during[number] = [1, late]
                    else:
                        d[0] += 1
                        d[1] += late
                if numbers and self.ref_interval_s > 0 and clock() - last_ref >= self.ref_interval_s:
                    self._reference_round(numbers)
                    last_ref = clock()

    def _reference_round(self, numbers: list[int]) -> None:
        """Time one reference round (this thread's CPU) and count it for the stages in progress."""
        n = self.ref_iterations
        cpu = cpu_loop_times(n)[0][1]
        for number in numbers:
            r0, cpu0, n0 = self._ref.get(number, (0, 0.0, 0))
            self._ref[number] = (r0 + 1, cpu0 + cpu, n0 + n)

    def stats(self) -> WakeStats:
        """The wake-ups so far (the probe goes on)."""
        n = self._samples
        during = {number: (int(d[0]), d[1]) for number, d in list(self._during.items())}
        return WakeStats(n, self._late_sum, self._late_min if n else 0.0, during, dict(self._ref))

    def stop(self) -> WakeStats:
        """End the probe thread (bounded wait) and return its figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return self.stats()
