"""Stop requests and the registry of flows, shared by every process of a run."""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator

import pytest

from wiredprof.profiling.control import RunControl


@pytest.fixture
def control() -> Iterator[RunControl]:
    c = RunControl()
    c.share()
    yield c
    c.unshare()


def _child_sees_stop(config: dict, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    control = RunControl.from_config(config)
    end = time.monotonic() + 20
    while not control.stop_requested and time.monotonic() < end:
        time.sleep(0.01)
    out.put(control.stop_requested)


def _fork(then) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            then()
        finally:
            os._exit(0)
    return pid


def test_a_stop_request_reaches_a_spawned_process(control):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_child_sees_stop, args=(control.child_config(), out))
    child.start()
    time.sleep(0.5)
    control.request_stop()
    assert out.get(timeout=30) is True
    child.join(timeout=10)


def test_a_forked_process_stops_the_whole_run(control):
    os.waitpid(_fork(control.request_stop), 0)
    assert control.stop_requested


def test_flows_are_numbered_and_a_reused_pipeline_name_gets_its_flow_number(control):
    first = control.register_flow(["http_integers", "average"], "threads")
    second = control.register_flow(["http_integers", "other"], "processes")
    assert (first.number, second.number) == (1, 2)
    assert first.pipelines == {"http_integers": "http_integers", "average": "average"}
    assert second.pipelines == {"http_integers": "http_integers#2", "other": "other"}
    assert control.flows_running() == 2
    control.end_flow(1)
    assert control.flows_running() == 1
    assert [f.end is not None for f in control.flows()] == [True, False]


def test_sleep_ends_at_a_stop_request(control):
    started = time.monotonic()
    pid = _fork(lambda: (time.sleep(0.3), control.request_stop()))
    control.sleep(30)
    assert time.monotonic() - started < 15
    os.waitpid(pid, 0)


def test_sleep_without_a_stop_lasts_its_time():
    control = RunControl()
    started = time.monotonic()
    control.sleep(0.2)
    assert time.monotonic() - started >= 0.2


def test_unshare_removes_the_files():
    control = RunControl()
    run_dir = control.share()
    control.register_flow(["p"], "threads")
    control.unshare()
    assert not os.path.exists(run_dir)


class _Clock:
    """A clock the test moves by hand (the stop conditions' own logic, without waiting)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_duration_counts_from_the_flows_start_not_the_runs():
    clock = _Clock()
    control = RunControl(duration_s=5, clock=clock, start_limit_s=60)
    clock.now += 30  # a long start-up (a spawned pool worker importing, say)
    assert control.deadline is None and control.startup_s is None and not control.stop_requested
    control.register_flow(["p"], "threads")
    assert control.startup_s == 30 and control.deadline == 135
    clock.now += 4.9
    assert not control.stop_requested and control.will_stop_within("p", 0.2)
    clock.now += 0.1
    assert control.stop_requested
    control.mark_flow_started()  # a later flow (or stage) does not move the start
    assert control.deadline == 135


def test_a_flow_that_never_starts_is_stopped_at_the_start_limit():
    clock = _Clock()
    control = RunControl(duration_s=5, clock=clock, start_limit_s=20)
    clock.now += 19.9
    assert not control.never_started and not control.stop_requested
    assert not control.should_stop("pipeline_1")
    clock.now += 0.1
    assert control.never_started and control.stop_requested
    # A loop that asks before its first pipeline (`while not wiredprof.should_stop(...)`) ends too.
    assert control.should_stop("pipeline_1") and control.should_stop()
    unbounded = RunControl(clock=clock)  # no start limit: waits as long as the script runs
    clock.now += 1000
    assert not unbounded.never_started and not unbounded.stop_requested


def _child_starts_the_flow(config: dict) -> None:  # type: ignore[type-arg]
    RunControl.from_config(config).register_flow(["p"], "threads")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_flows_start_in_a_child_process_sets_the_runs_deadline(control, method):
    control.duration_s = 5
    control.start_limit_s = 600
    ctx = multiprocessing.get_context(method)
    child = ctx.Process(target=_child_starts_the_flow, args=(control.child_config(),))
    before = time.monotonic()
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    started = control.flow_started
    assert started is not None and before <= started <= time.monotonic()
    assert control.deadline == started + 5 and control.startup_s == started - control.started
