"""The thread-state sampler's arithmetic: per-tick CPU and run delay, edge ticks prorated, a bounded budget.

Real threads of this process and a real state table; the CPU counters and the clock are fake."""
from __future__ import annotations

import mmap
import threading

import pytest

from wiredprof.profiling import statesampler
from wiredprof.profiling.statesampler import BUDGET, MAX_INTERVAL_S, Sampler, next_wait
from wiredprof.profiling.statetable import PREV, SINCE, SIZE, STAGE, claim_row, views


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def table():
    mm = mmap.mmap(-1, SIZE)
    words, times = views(mm)
    yield words, times
    words.release()
    times.release()
    mm.close()


def test_competitors_only_for_the_part_of_a_tick_the_stage_overlapped(table, monkeypatch) -> None:
    words, times = table
    me = threading.get_native_id()
    ready, done = threading.Event(), threading.Event()
    other: list[int] = []

    def idle_thread() -> None:
        other.append(threading.get_native_id())
        ready.set()
        done.wait(10)

    t = threading.Thread(target=idle_thread)
    t.start()
    ready.wait(10)
    try:
        cpu = {me: 0, other[0]: 0}  # ns; the other thread "uses" one CPU second per tick
        delay = {me: 0, other[0]: 0}  # ns runnable but queued for a core (the kernel's run delay)
        monkeypatch.setattr(statesampler, "_schedstat",
                            lambda tgid, tid: (cpu[tid], delay[tid]) if tid in cpu else None)
        monkeypatch.setattr(statesampler, "_state", lambda tgid, tid: "S")
        clock = Clock()
        sampler = Sampler(words, times, clock)
        row = claim_row(words, me)
        claim_row(words, other[0])
        sampler.tick()  # t=0: the baseline

        # Long before this tick the other thread burnt CPU no stage saw: never charged.
        cpu[other[0]] += 50 * 10**9
        clock.t = 1.0
        sampler.tick()
        assert sampler.stages == {}

        # The stage begins at 1.75: it overlaps a quarter of the tick that ends at 2.
        words[row + STAGE], words[row + PREV], times[row + SINCE] = 7, 0, 1.75
        cpu[other[0]] += 10**9
        delay[me] += 4 * 10**8  # its thread queued 0.4 s in that tick: a quarter is the stage's
        delay[other[0]] += 10**9  # another thread's queueing is never the stage's
        clock.t = 2.0
        sampler.tick()
        # It ends at 2.5 (half of the next tick), and another (8) begins at 2.5 and runs on.
        words[row + STAGE], words[row + PREV], times[row + SINCE] = 0, 7, 2.5
        cpu[other[0]] += 10**9
        clock.t = 3.0
        sampler.tick()
        stage7 = sampler.stages[7]
        assert stage7[5] == pytest.approx(0.75)  # seconds the sampler saw it for
        assert stage7[3] == {(other[0], 0): pytest.approx(0.75)}  # 1/4 + 1/2 of a CPU second
        assert stage7[0] + stage7[1] + stage7[2] == 1  # one point sample: the tick it was running at
        assert stage7[6] == pytest.approx(0.1)  # measured queueing, prorated like the CPU
        assert stage7[7] == 0.0  # no tick covered whole: the queueing is prorated, not measured
        # Stage 8 began at 2.5 and is still running at 4: the tick 3-4 is all its own.
        words[row + STAGE], words[row + PREV], times[row + SINCE] = 8, 0, 2.5
        delay[me] += 3 * 10**8
        clock.t = 4.0
        sampler.tick()
        assert sampler.stages[8][7] == pytest.approx(1.0) and sampler.stages[8][6] == pytest.approx(0.3)
        assert sampler.result()["run_delay"] is True and len(sampler.result()["stages"]["8"]) == 8
    finally:
        done.set()
        t.join(10)


def test_the_sampler_spends_a_fixed_budget_whatever_the_number_of_threads() -> None:
    assert next_wait(0.02, 0.0001) == 0.02  # cheap ticks: the interval asked for
    assert next_wait(0.02, 0.002) == pytest.approx(0.002 / BUDGET)  # 100 threads: ticks less often
    assert next_wait(0.02, 1.0) == MAX_INTERVAL_S
