"""The wake-up probe: how long a thread of this process waits for the GIL and a core once it could run."""
from __future__ import annotations

import sys
import threading
import time

from wiredprof.profiling.wakeprobe import WakeProbe, WakeStats


def _probe_for(seconds: float) -> WakeStats:
    probe = WakeProbe(interval_s=0.01).start()
    time.sleep(seconds)
    return probe.stop()


def test_a_busy_python_thread_beside_it_makes_every_wake_up_wait_for_the_gil() -> None:
    """Side by side in one process: alone, then beside a thread that runs Python without a break
    (as wiredflow's MQTT loop does). Beside it each wake-up waits for the GIL: about a switch interval."""
    alone = _probe_for(1.0)
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    hog = threading.Thread(target=spin, daemon=True)
    hog.start()
    try:
        beside = _probe_for(1.0)
    finally:
        stop.set()
        hog.join(5)
    assert alone.samples >= 10 and beside.samples >= 10
    assert beside.excess_s > 4 * alone.excess_s
    assert beside.excess_s >= 0.25 * sys.getswitchinterval()


def test_stop_ends_the_thread_and_keeps_the_figures() -> None:
    probe = WakeProbe(interval_s=0.005).start()
    time.sleep(0.2)
    stats = probe.stop()
    assert not any(t.name == "wiredprof-wake-probe" and t.is_alive() for t in threading.enumerate())
    assert stats.samples >= 2 and stats.late_min_s <= stats.late_sum_s / stats.samples


def test_stats_of_two_processes_pool_their_wake_ups() -> None:
    a, b = WakeStats(10, 0.010, 0.0001), WakeStats(30, 0.090, 0.0002)
    both = a.merged(b)
    assert (both.samples, both.late_min_s) == (40, 0.0001) and abs(both.late_sum_s - 0.100) < 1e-12
    assert abs(both.excess_s - (0.100 / 40 - 0.0001)) < 1e-12  # the quietest wake-up: the timer's slack
    assert WakeStats().merged(a) == a and a.merged(WakeStats()) == a
    assert WakeStats(1, 0.5, 0.5).excess_s == 0.0  # one wake-up: nothing to compare it with


def test_wake_ups_while_a_stage_runs_are_told_apart() -> None:
    """A stage that hogs the GIL delays wake-ups only while it runs: those leave with it when it
    moves, so the figure without it is the one that stays."""
    running: list[int] = []
    probe = WakeProbe(interval_s=0.01, active=lambda: list(running)).start()
    time.sleep(0.5)
    running.append(7)  # stage 7 in progress: it spins without a break
    end = time.monotonic() + 0.5
    x = 0
    while time.monotonic() < end:
        x += 1
    running.clear()
    time.sleep(0.5)
    stats = probe.stop()
    k, _late = stats.during[7]
    assert 0 < k < stats.samples
    without, n = stats.excess_without_s([7])
    assert n == stats.samples - k
    assert without < stats.excess_s
    assert stats.excess_without_s([]) == (stats.excess_s, stats.samples)


def test_when_every_wake_up_waits_the_quietest_one_is_no_baseline() -> None:
    """Beside a thread that never lets the GIL go, even the quietest wake-up waited a switch interval:
    only the timer's slack (at most 0.1 ms) comes off, not the whole wait."""
    always = WakeStats(10, 0.060, 0.005)
    assert abs(always.excess_s - (0.006 - 0.0001)) < 1e-12
    assert abs(always.excess_without_s([])[0] - (0.006 - 0.0001)) < 1e-12


def test_reference_rounds_are_timed_only_while_a_stage_runs_and_counted_for_it() -> None:
    running: list[int] = []
    probe = WakeProbe(interval_s=0.005, active=lambda: list(running), ref_interval_s=0.02, ref_iterations=5_000).start()
    time.sleep(0.2)
    assert probe.stats().ref == {}  # no stage in progress: no round
    running.append(4)
    time.sleep(0.5)
    running.clear()
    stats = probe.stop()
    rounds, cpu, iterations = stats.ref[4]
    assert rounds >= 2 and iterations == 5_000 * rounds and cpu > 0
    per_iteration, n = stats.ref_iteration_cpu_s(4)
    assert n == rounds and per_iteration == cpu / iterations
    assert stats.ref_iteration_cpu_s(9) == (0.0, 0)
    both = stats.merged(WakeStats(5, 0.01, 0.001, {}, {4: (1, 0.5, 5_000), 8: (2, 0.1, 10_000)}))
    assert both.ref[4] == (rounds + 1, cpu + 0.5, iterations + 5_000) and both.ref[8] == (2, 0.1, 10_000)
