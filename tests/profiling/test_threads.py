"""The thread-state sampler process as the recorder sees it: it outlives a Ctrl-C, and when it dies
the profile says which figures are missing (issue 9)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from wiredprof.analysis import classify
from wiredprof.profiling.aggregate import build_profile, stage_stats
from wiredprof.profiling.childlink import ThreadsRecord
from wiredprof.profiling.instrument import timed_call
from wiredprof.profiling.recorder import Recorder
from tests.samples._run import pid_alive as _alive
from wiredprof.profiling.threads import SAMPLER_FIGURES, ThreadStateSampler, proc_available

pytestmark = pytest.mark.skipif(not proc_available(), reason="needs Linux /proc")


def _run(rec: Recorder, seconds: float) -> None:
    acc = rec.stage("p", "s")
    rec.register_thread("p", "pipeline")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        timed_call(rec, acc, time.sleep, 0.005)


@contextmanager
def sampling() -> Iterator[tuple[Recorder, ThreadStateSampler, subprocess.Popen[bytes]]]:
    """A recorder with its sampler process running; stopped (and folded) on leaving."""
    rec = Recorder()
    sampler = ThreadStateSampler(rec)
    sampler.start()
    proc = sampler._proc
    assert proc is not None
    try:
        yield rec, sampler, proc
    finally:
        sampler.stop()


def test_a_ctrl_c_to_the_process_group_is_not_for_the_sampler() -> None:
    with sampling() as (rec, sampler, proc):
        os.kill(proc.pid, signal.SIGINT)
        _run(rec, 0.5)
        assert _alive(proc.pid)
    assert not _alive(proc.pid)
    assert sampler.missing == [] and not rec.notes
    acc = rec.stages[("p", "s")]
    assert acc.samples_running + acc.samples_lock_wait + acc.samples_io_wait > 0


def test_a_dead_sampler_leaves_its_last_snapshot_and_a_note() -> None:
    with sampling() as (rec, sampler, proc):
        _run(rec, 1.6)  # the sampler writes a snapshot every second
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _run(rec, 0.3)
    acc = rec.stages[("p", "s")]
    assert acc.samples_io_wait > 0  # from the snapshot
    assert sampler.missing == [f"{f} (partial)" for f in SAMPLER_FIGURES]
    note = next(n for n in rec.notes if "thread-state sampler" in n)
    assert f"(pid {proc.pid}) was killed by SIGKILL" in note and "cover only its first" in note
    assert note in build_profile(rec, "f.py", 2.0).notes


def test_a_sampler_dead_before_its_first_snapshot_means_missing_figures() -> None:
    with sampling() as (rec, sampler, proc):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _run(rec, 0.1)
    assert sampler.missing == list(SAMPLER_FIGURES)
    note = next(n for n in rec.notes if "thread-state sampler" in n)
    assert "are missing (shown as 0, not measured)" in note and "gil wait" in note and "framework cpu" in note


def test_competitor_cpu_becomes_a_rate_over_the_stages_whole_time() -> None:
    """The sampler saw the stage for 0.5 s and charged 0.2 s of another thread's CPU then; the stage
    ran 2 s in all: 0.8 s of competitor CPU, never CPU from before the stage began."""
    rec = Recorder()
    acc = rec.stage("p", "s")
    other = rec.stage("p", "other")
    acc.base.calls, acc.base.total = 4, 2.0
    report = {"ticks": 10, "threads": {}, "stages": {
        str(acc.number): [3, 0, 1, [[4242, other.number, 0.2], [4243, 0, 0.1]], 0, 0.5],
    }}
    ThreadStateSampler(rec)._fold(report)
    assert acc.competitors == {"p.other": pytest.approx(0.8), "thread 4243": pytest.approx(0.4)}
    assert (acc.samples_running, acc.samples_io_wait) == (3, 1)


def test_wiredprofs_own_threads_in_a_child_are_nobodys_competitors() -> None:
    """A child process's wake-up probe (its reference rounds take CPU while a stage runs there)
    was charged to the stage as "thread 3374": a thread the user cannot find in the flow."""
    rec = Recorder()
    acc = rec.stage("p", "s")
    acc.base.calls, acc.base.total = 1, 1.0
    rec.apply([ThreadsRecord(4000, [], ((4243, "wiredprof-wake-probe"), (4245, "Thread-3 (serve)")))])
    report = {"ticks": 10, "threads": {}, "stages": {
        str(acc.number): [3, 0, 1, [[4243, 0, 0.2], [4244, 0, 0.1], [4245, 0, 0.05]], 0, 1.0],
    }}
    ThreadStateSampler(rec)._fold(report)
    # A thread the child named is named after it ended; one never seen alive keeps its id.
    assert acc.competitors == {"thread 4244": pytest.approx(0.1), "thread Thread-3 (serve)": pytest.approx(0.05)}


def test_core_wait_is_the_kernels_run_delay_not_a_share_of_running_samples() -> None:
    """A 50 ms call seen in state R at one of its two ticks was once charged 84 % core wait on a
    quiet machine; the kernel's run delay of its thread says how long it really queued."""
    rec = Recorder()
    quiet, busy = rec.stage("p", "quiet"), rec.stage("p", "busy")
    for acc in (quiet, busy):
        acc.base.calls, acc.base.total, acc.base.cpu = 1, 0.05, 0.005
    report = {"ticks": 4, "threads": {}, "run_delay": True, "stages": {
        str(quiet.number): [1, 0, 1, [], 0, 0.05, 0.0, 0.04],
        str(busy.number): [1, 0, 1, [], 0, 0.025, 0.01, 0.02],  # seen for half its time: 0.02 s in all
    }}
    ThreadStateSampler(rec)._fold(report)
    assert stage_stats(quiet).cpu_queue_s == 0.0
    assert stage_stats(busy).cpu_queue_s == pytest.approx(0.02)
    # A sampler without run delays (an older report): estimated from the states, as before.
    old = rec.stage("p", "old")
    old.base.calls, old.base.total, old.base.cpu = 1, 0.05, 0.005
    ThreadStateSampler(rec)._fold({"ticks": 4, "threads": {}, "stages": {str(old.number): [1, 0, 1, [], 0, 0.05]}})
    assert stage_stats(old).cpu_queue_s == pytest.approx(0.02)


def test_core_wait_below_the_samplers_resolution_is_not_a_number() -> None:
    """A stage whose calls are shorter than a tick is seen only in parts of ticks, where its
    thread's queueing cannot be told from the rest of the tick's: not measurable (None), however
    much run delay the prorating gave it, and so is a stage the sampler never saw at all."""
    rec = Recorder()
    short, unseen, long_ = rec.stage("p", "short"), rec.stage("p", "unseen"), rec.stage("p", "long")
    for acc in (short, unseen, long_):
        acc.base.calls, acc.base.total, acc.base.cpu = 10, 0.5, 0.05
    ThreadStateSampler(rec)._fold({"ticks": 40, "threads": {}, "run_delay": True, "stages": {
        str(short.number): [1, 0, 0, [], 0, 0.004, 0.003, 0.0],  # parts of ticks only
        str(long_.number): [9, 0, 1, [], 0, 0.5, 0.2, 0.45],  # mostly whole ticks: measured
    }})
    assert stage_stats(short).cpu_queue_s is None
    assert stage_stats(unseen).cpu_queue_s is None
    assert stage_stats(long_).cpu_queue_s == pytest.approx(0.2)
    assert classify(stage_stats(short)).queue_ratio == 0.0  # not counted as queueing in the bound either


def test_measured_core_wait_is_not_counted_as_gil_wait_too() -> None:
    """Overloaded: 40 ms of a 50 ms call queued for a core, its one blocked sample in a futex. The
    queueing is core wait; only the rest of the wait can be the GIL's."""
    rec = Recorder()
    acc = rec.stage("p", "s")
    acc.base.calls, acc.base.total, acc.base.cpu = 1, 0.05, 0.005
    ThreadStateSampler(rec)._fold({"ticks": 4, "threads": {}, "run_delay": True, "stages": {
        str(acc.number): [2, 1, 0, [], 0, 0.05, 0.04, 0.04]}})
    stats = stage_stats(acc)
    assert stats.cpu_queue_s == pytest.approx(0.04)
    assert stats.gil_wait_s == pytest.approx(0.005)
    assert stats.cpu_queue_s + stats.gil_wait_s <= stats.wait_s + 1e-12


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_cpu_stage_starved_of_cores_shows_core_wait_measured_end_to_end() -> None:
    """Through the real sampler process: a CPU-bound stage beside more busy processes than cores
    waits for a core, and that is core wait (the kernel's run delay), not GIL wait. The sampler's
    report once dropped the run delay, and the whole wait of such a stage was called GIL wait."""
    hogs = [subprocess.Popen([sys.executable, "-c", "import time\nt = time.monotonic()\n"
                              "while time.monotonic() - t < 30: pass"])
            for _ in range((os.cpu_count() or 1) + 1)]
    try:
        with sampling() as (rec, _sampler, _proc):
            acc = rec.stage("p", "crunch")
            rec.register_thread("p", "pipeline")
            for _ in range(4):
                timed_call(rec, acc, _burn, 0.15)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(10)
    stats = stage_stats(rec.stages[("p", "crunch")])
    assert rec.stages[("p", "crunch")].queue_measured
    assert stats.wait_s > 0.0
    assert stats.cpu_queue_s > stats.gil_wait_s
    assert stats.cpu_queue_s >= 0.5 * stats.wait_s
