"""What the recorder and `timed_call` record, pinned down so that making them cheaper
(see benchmarks/overhead.py) cannot change it. Fake clocks: the assertions are arithmetic."""
from __future__ import annotations

import os
import threading
from collections import deque

import pytest

from wiredprof.profile import TimelineSpan
from wiredprof.profiling.instrument import StageTimer, timed_call
from wiredprof.profiling.recorder import Recorder


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make() -> tuple[Recorder, FakeClock, FakeClock]:
    wall, cpu = FakeClock(), FakeClock()
    wall.t, cpu.t = 100.0, 10.0
    return Recorder(clock=wall, cpu_clock=cpu, timeline_size=3), wall, cpu


def test_nested_calls_record_self_time_and_restore_the_active_stage() -> None:
    rec, wall, cpu = make()
    rec.register_thread("p", "pipeline")
    outer, inner = rec.stage("p", "outer"), rec.stage("p", "inner")
    tid = threading.get_native_id()
    s0, c0 = rec.enter(outer)
    assert (s0, c0) == (100.0, 10.0) and rec.current_stage() is outer
    wall.t, cpu.t = 101.0, 10.5
    s1, c1 = rec.enter(inner)
    assert rec.current_stage() is inner
    wall.t, cpu.t = 103.0, 11.5
    rec.exit(inner, s1, c1)
    assert rec.current_stage() is outer
    wall.t, cpu.t = 104.0, 12.0
    rec.exit(outer, s0, c0)
    assert rec.current_stage() is None
    assert (inner.calls, inner.total, inner.cpu, inner.max) == (1, 2.0, 1.0, 2.0)
    assert (outer.calls, outer.total, outer.cpu) == (1, 2.0, 1.0)  # 4 s minus the inner 2 s
    assert rec.threads[tid].stage_cpu == pytest.approx(2.0)
    tl = rec.timeline
    assert isinstance(tl, deque) and all(isinstance(s, TimelineSpan) for s in tl)
    assert [(s.stage, s.start_s, s.wall_s, s.cpu_s, s.error, s.sampled) for s in tl] == [
        ("inner", 101.0 - rec.t0, 2.0, 1.0, False, False),
        ("outer", 100.0 - rec.t0, 2.0, 1.0, False, False),
    ]
    assert tl[0].pipeline == "p" and tl[0].host == "local"


def test_errors_sampled_calls_and_the_bounded_timeline() -> None:
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")
    for k in range(5):
        start, cpu_start = rec.enter(acc)
        wall.t += 1.0
        cpu.t += 0.25
        rec.exit(acc, start, cpu_start, ValueError("bad") if k == 1 else None, sampled=(k == 2))
    assert (acc.calls, acc.sampled, acc.errors) == (4, 1, 1)
    assert acc.total == pytest.approx(4.0) and acc.cpu == pytest.approx(1.0)
    assert acc.last_error is not None and acc.last_error.type == "ValueError"
    assert "ValueError: bad" in acc.last_error.traceback
    assert rec.timeline_seen == 5
    tl = rec.timeline
    assert len(tl) == 3 and tl.maxlen == 3
    assert [s.sampled for s in tl] == [True, False, False]
    assert acc.sketch.count == 4


def test_cancel_forgets_the_innermost_call() -> None:
    rec, _, _ = make()
    outer, inner = rec.stage("p", "outer"), rec.stage("p", "inner")
    rec.enter(outer)
    rec.enter(inner)
    rec.cancel()
    assert rec.current_stage() is outer
    rec.cancel()
    assert rec.current_stage() is None
    assert rec.timeline_seen == 0


def test_timed_call_plain_error_generator_and_sampled() -> None:
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")

    def work(x: int) -> int:
        wall.t += 1.0
        return x * 2

    assert timed_call(rec, acc, work, 21) == 42
    assert (acc.calls, acc.seen, acc.total) == (1, 1, 1.0)

    def fails() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        timed_call(rec, acc, fails)
    assert (acc.calls, acc.errors) == (2, 1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        timed_call(rec, acc, interrupted)
    assert (acc.calls, acc.errors) == (3, 1)  # not the stage's error

    def items():
        for i in range(3):
            wall.t += 2.0
            yield i

    gen = timed_call(rec, acc, items)
    assert acc.calls == 3 and acc.seen == 3  # creating the generator is not a call
    assert list(gen) == [0, 1, 2]
    assert acc.calls == 6 and acc.seen == 6 and acc.total == pytest.approx(1.0 + 6.0)
    assert rec.current_stage() is None

    class Sampler:
        every = 7  # the sampler is asked only at the 2nd call and every `every`-th

        def __init__(self) -> None:
            self.stopped: list[int] = []

        def wants(self, a, ordinal: int) -> bool:
            return ordinal == 7

        def start(self):
            return object()

        def stop(self, a, profiler, ordinal: int):
            self.stopped.append(ordinal)
            return None

    rec.call_trees = Sampler()
    timed_call(rec, acc, work, 1)
    timed_call(rec, acc, work, 1)
    assert (acc.calls, acc.sampled, acc.seen) == (7, 1, 8)
    assert rec.call_trees.stopped == [7]

    timer = StageTimer(rec, acc)
    timer.begin()
    timer.end()
    assert acc.calls == 8


def test_threads_keep_their_own_stacks() -> None:
    rec = Recorder()
    acc = rec.stage("p", "s")
    results: list[int] = []

    def run() -> None:
        for _ in range(200):
            timed_call(rec, acc, lambda: None)
        results.append(threading.get_native_id())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc.calls == 800 and acc.sketch.count == 800
    assert rec.current_stage() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_forwards_its_spans_to_the_parent() -> None:
    rec = Recorder()
    acc = rec.stage("p", "s")
    timed_call(rec, acc, lambda: None)
    rec.open_inbox()
    try:
        pid = os.fork()
        if pid == 0:  # child
            try:
                for _ in range(10):
                    timed_call(rec, acc, lambda: None)
                rec.add_cycle("p", 0.5)
                rec.flush()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        rec.drain()
        assert acc.calls == 11
        assert rec.cycles["p"].runs == 1
        assert rec.timeline_seen == 11
    finally:
        rec.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_knows_its_own_thread_id() -> None:
    rec = Recorder()
    acc = rec.stage("p", "s")
    timed_call(rec, acc, lambda: None)  # this thread's state exists before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child, without open_inbox: no fork hook of the recorder's own
        try:
            os.close(r)
            rec.enter(acc)
            ok = rec.current_stage() is acc and rec._local.tid == threading.get_native_id()
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1"
    os.close(r)


def test_the_cpu_window_lies_inside_the_wall_window() -> None:
    """Issue 9: the CPU clock is read inside the wall-clock pair, so no call shows cpu > wall."""
    reads: list[str] = []

    def wall() -> float:
        reads.append("wall")
        return 1.0

    def cpu() -> float:
        reads.append("cpu")
        return 1.0

    rec = Recorder(clock=wall, cpu_clock=cpu)
    reads.clear()
    acc = rec.stage("p", "s")
    start, cpu_start = rec.enter(acc)
    rec.exit(acc, start, cpu_start)
    assert reads == ["wall", "cpu", "cpu", "wall"]


def test_cpu_never_exceeds_wall_and_p95_never_falls_below_a_single_call() -> None:
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")
    start, cpu_start = rec.enter(acc)
    wall.t += 0.0123456
    cpu.t += 0.0123459  # the two clocks tick in their own steps
    rec.exit(acc, start, cpu_start)
    assert acc.cpu <= acc.total == pytest.approx(0.0123456)
    assert acc.quantile(0.95) == acc.max == acc.total  # one call: its p95 is that call
    for k in range(1, 40):
        start, cpu_start = rec.enter(acc)
        wall.t += 0.001 * k
        rec.exit(acc, start, cpu_start)
    assert acc.quantile(0.95) <= acc.max
    assert acc.quantile(0.95) == pytest.approx(0.037, rel=0.011)  # nearest rank: the 38th of 40


def test_a_sampled_call_and_its_profiler_stay_out_of_its_caller_and_of_calls_inside_it() -> None:
    """Issue 9: a sampled call's extra cost (profiler start and stop) is not its caller's self time,
    and a call that runs inside it (under the profiler) is not timed either."""
    rec, wall, cpu = make()
    outer, inner, leaf = rec.stage("p", "connector"), rec.stage("p", "storage"), rec.stage("p", "leaf")

    class Sampler:
        every = 1

        def wants(self, a, ordinal: int) -> bool:
            return a is inner

        def start(self):
            wall.t += 0.5  # what starting pyinstrument costs, here on the fake clock
            return object()

        def stop(self, a, profiler, ordinal: int):
            wall.t += 0.25
            return None

        def add_json(self, *args) -> None:
            pass

        def trees(self) -> list:
            return []

    rec.call_trees = Sampler()
    inner.next_check = 1  # ask the sampler from the first call on

    def leaf_work() -> None:
        wall.t += 1.0

    def storage() -> None:
        wall.t += 2.0
        timed_call(rec, leaf, leaf_work)

    s0, c0 = rec.enter(outer)
    wall.t += 0.125
    timed_call(rec, inner, storage)
    rec.exit(outer, s0, c0)
    rec.add_cycle("p", 4.0)
    assert (outer.calls, outer.total) == (1, 0.125)  # not the 0.75 s of profiler nor the 3 s inside
    assert (inner.calls, inner.sampled) == (0, 1)
    assert (leaf.calls, leaf.sampled) == (0, 1)  # ran under the profiler: out of the timings
    assert rec.cycles["p"].timed == 0
    timed_call(rec, leaf, leaf_work)  # the profiler is gone: timed again
    assert (leaf.calls, leaf.total) == (1, 1.0)


def test_short_calls_read_the_cpu_clock_on_one_call_in_16_and_estimate_the_others() -> None:
    from wiredprof.profiling.accumulators import CPU_EVERY_CALL_S, CPU_READ_EVERY

    reads = []
    wall, cpu = FakeClock(), FakeClock()

    def cpu_clock() -> float:
        reads.append(cpu.t)
        return cpu.t

    rec = Recorder(clock=wall, cpu_clock=cpu_clock)
    acc = rec.stage("p", "short")

    def short_call() -> None:  # 1 ms of wall, 10 % of it on the CPU: under CPU_EVERY_CALL_S
        wall.t += 0.001
        cpu.t += 0.0001

    assert 0.0001 < CPU_EVERY_CALL_S
    for _ in range(CPU_READ_EVERY):
        timed_call(rec, acc, short_call)
    assert len(reads) == CPU_READ_EVERY * 2  # a stage's first calls: two reads each
    reads.clear()
    for _ in range(2 * CPU_READ_EVERY):
        timed_call(rec, acc, short_call)
    assert len(reads) == 2 * 2  # then one call in CPU_READ_EVERY: two reads each
    assert acc.calls == 3 * CPU_READ_EVERY
    assert acc.cpu == pytest.approx(3 * CPU_READ_EVERY * 0.0001)  # the others at the measured 10 %
    assert all(s.cpu_s <= s.wall_s for s in rec.timeline)

    long_acc = rec.stage("p", "long")
    reads.clear()

    def long_call() -> None:  # CPU_EVERY_CALL_S or more on the CPU: read on every call
        wall.t += 0.01
        cpu.t += 2 * CPU_EVERY_CALL_S

    for _ in range(5):
        timed_call(rec, long_acc, long_call)
    assert len(reads) == 5 * 2
    assert long_acc.cpu == pytest.approx(5 * 2 * CPU_EVERY_CALL_S)


def test_spans_of_threads_that_ended_are_folded_when_the_profile_is_read() -> None:
    rec, wall, cpu = make()
    acc = rec.stage("p", "s")

    def work() -> None:
        wall.t += 0.5
        cpu.t += 0.25

    def pipeline() -> None:
        for _ in range(3):
            timed_call(rec, acc, work)

    t = threading.Thread(target=pipeline)
    t.start()
    t.join()
    assert len(rec._pending_lists) == 2  # this thread's list, and the ended thread's, not folded yet
    assert (acc.calls, acc.cpu, acc.max) == (3, 0.75, 0.5)  # read through its list
    rec.settle()
    assert len(rec._pending_lists) == 1  # the ended thread's list is gone, its spans folded
    assert (acc.calls, acc.total, acc.cpu, acc.max) == (3, 1.5, 0.75, 0.5)
    assert acc.quantile(0.95) == pytest.approx(0.5, rel=0.01)
    assert len(rec.timeline) == 3


@pytest.mark.parametrize("spread", [0.05, 3.0])  # values in few buckets, and in more buckets than values
def test_p95_within_1_percent_whether_the_values_fill_few_buckets_or_many(spread: float) -> None:
    import math
    import random

    from wiredprof.profiling.accumulators import StageAccumulator, StageShard

    rng = random.Random(7)
    walls = [rng.lognormvariate(-9, spread) for _ in range(1000)] + [0.0] * 10
    acc = StageAccumulator("p", "s")
    shard = StageShard(acc)
    acc.shards.append(shard)
    for start in range(0, len(walls), 256):
        batch = walls[start:start + 256]
        shard.calls += len(batch)
        shard.total += sum(batch)
        shard.fold(list(batch), [0.0] * len(batch))
    exact = sorted(walls)[math.ceil(0.95 * len(walls)) - 1]
    assert acc.quantile(0.95) == pytest.approx(exact, rel=0.01)
    assert acc.quantile(0.001) == 0.0  # the zero-length calls
    assert acc.max == max(walls)
