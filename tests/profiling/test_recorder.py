"""The recorder's arithmetic with a fake clock, its bounds, and its forwarding from child processes."""
from __future__ import annotations

import os
import sys

import pytest

from wiredprof.profiling.aggregate import build_profile
from wiredprof.profiling.recorder import Recorder


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(timeline_size=5000):
    wall, cpu = FakeClock(), FakeClock()
    return Recorder(timeline_size=timeline_size, clock=wall, cpu_clock=cpu), wall, cpu


def test_self_time_of_nested_stages():
    rec, wall, cpu = make()
    outer = rec.stage("pipeline_2", "mqtt_connector")
    inner = rec.stage("pipeline_2", "storage")
    s0, c0 = rec.enter(outer)
    wall.now += 1.0
    s1, c1 = rec.enter(inner)
    wall.now += 5.0
    cpu.now += 0.5
    rec.exit(inner, s1, c1)
    wall.now += 1.0
    rec.exit(outer, s0, c0)
    assert (inner.calls, inner.total, inner.cpu) == (1, 5.0, 0.5)
    assert (outer.calls, outer.total, outer.cpu) == (1, 2.0, 0.0)


def test_p95_and_mean_from_the_sketch():
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")
    for i in range(1, 101):
        s, c = rec.enter(acc)
        wall.now += i / 100
        cpu.now += i / 200
        rec.exit(acc, s, c)
    prof = build_profile(rec, "f.py", 1.0)
    stats = prof.stage("p.s")
    assert stats.calls == 100
    assert stats.mean_s == pytest.approx(0.505)
    assert stats.p95_s == pytest.approx(0.95, rel=0.02)
    assert stats.cpu_s == pytest.approx(25.25)
    assert stats.wait_s == pytest.approx(25.25)


def test_errors_sampled_calls_and_cycles():
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")
    s, c = rec.enter(acc)
    wall.now += 1
    rec.exit(acc, s, c, ValueError("boom"))
    s, c = rec.enter(acc)
    wall.now += 9
    rec.exit(acc, s, c, sampled=True)
    rec.add_cycle("p", 30.0)  # the sampled call was in this cycle: counted, not timed
    rec.add_cycle("p", 3.0)
    rec.add_cycle("p", 5.0, failed=True)
    prof = build_profile(rec, "f.py", 10.0)
    stats = prof.stage("p.s")
    assert (stats.calls, stats.sampled_calls, stats.errors, stats.total_s) == (1, 1, 1, 1.0)
    assert stats.last_error.type == "ValueError" and "boom" in stats.last_error.traceback
    pipe = prof.pipeline("p")
    assert (pipe.runs, pipe.wall_s, pipe.max_s, pipe.errors) == (3, 4.0, 5.0, 1)
    assert [t.sampled for t in prof.timeline] == [False, True]


def test_memory_is_bounded_by_stages_not_calls():
    rec, wall, cpu = make(timeline_size=100)
    acc = rec.stage("p", "s")
    for _ in range(20_000):
        s, c = rec.enter(acc)
        wall.now += 0.001
        rec.exit(acc, s, c)
    assert len(rec.timeline) == 100
    assert rec.timeline_seen == 20_000
    assert len(acc.sketch._store.bins) <= 256  # DenseStore grows in chunks of 128 bins
    assert build_profile(rec, "f.py", 1.0).timeline_dropped == 19_900


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_child_process_records_reach_the_parent():
    rec = Recorder()
    rec.open_inbox()
    acc = rec.stage("p", "s")
    pid = os.fork()
    if pid == 0:  # child: record, flush, leave without running the parent's cleanups
        try:
            for _ in range(200):
                s, c = rec.enter(acc)
                rec.exit(acc, s, c)
            rec.add_cycle("p", 0.5)
            rec.flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    rec.drain()
    rec.close()
    assert acc.calls == 200
    assert rec.cycles["p"].runs == 1
