"""Profiles of the reference service (DESIGN.md, durations x 0.1) for the report tests.

`reference_profile(offloaded=True)` has pipeline_3's core_logic on host "B", one failed
storage call and one call sampled for call stacks, with a call tree from a real
pyinstrument session; `offloaded=False` is the same flow with everything on the local host.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from pyinstrument import Profiler

from wiredprof.analysis import analyze
from wiredprof.profile import CallTree, Profile, TimelineSpan
from wiredprof.profiling.aggregate import build_profile
from wiredprof.profiling.calltree import CallTreeSampler
from wiredprof.profiling.recorder import Recorder

# (pipeline, [(stage, kind, wall_s, cpu_ratio)]), scaled from the reference table.
REFERENCE = [
    ("pipeline_1", [("http_connector", "http_connector", 0.5, 0.02), ("storage", "storage", 1.5, 0.02)]),
    ("pipeline_2", [("mqtt_connector", "mqtt_connector", 0.1, 0.05), ("storage", "storage", 0.5, 0.02)]),
    (
        "pipeline_3",
        [
            ("core_logic", "core_logic", 6.0, 0.97),
            ("send", "send", 0.1, 0.01),
            ("storage_2", "storage", 0.1, 0.02),
            ("send_2", "send", 0.1, 0.01),
        ],
    ),
]
B_SPEEDUP = 4.0
RUN_S = 14.0


def _score(n: int) -> int:
    return sum(i * i % 7 for i in range(n))


def _core_logic_work(deadline_s: float) -> int:
    total, end = 0, time.perf_counter() + deadline_s
    while time.perf_counter() < end:
        total += _score(2000)
    return total


def real_call_tree(pipeline: str = "pipeline_3", stage: str = "core_logic") -> CallTree:
    """A call tree made the way the recorder makes one: pyinstrument on a real call."""
    sampler = CallTreeSampler(interval_s=0.0005)
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    _core_logic_work(0.08)
    session = profiler.stop()
    sampler.add(pipeline, stage, session, 2)
    (tree,) = sampler.trees()
    return tree


class _FakeClock:
    """A clock the schedule below sets: the recorder's figures are then plain arithmetic."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _save() -> None:
    raise OSError("disk <full> & 'slow'")


def _record_call(rec: Recorder, wall: _FakeClock, cpu: _FakeClock, span: TimelineSpan, kind: str, index: int) -> None:
    """One stage call through the recorder, as the instrumentation makes it: enter, the call, exit."""
    acc = rec.stage(span.pipeline, span.stage, kind, index)
    wall.t = span.start_s
    start, cpu_start = rec.enter(acc, sampled=span.sampled)
    wall.t += span.wall_s
    cpu.t += span.cpu_s
    error: BaseException | None = None
    if span.error:
        try:
            _save()
        except OSError as exc:
            error = exc
    rec.exit(acc, start, cpu_start, error, sampled=span.sampled)


def _run_pipeline(rec: Recorder, wall: _FakeClock, cpu: _FakeClock, pipeline: str,
                  chain: list[tuple[str, str, float, float]], offloaded: bool) -> None:
    """One pipeline's cycles until RUN_S, in its own thread (as a flow's pipelines run)."""
    cpu.t = 0.0  # this thread's CPU clock
    rec.register_thread(pipeline, "pipeline")
    t, cycles, calls = 0.05, 0, {stage: 0 for stage, *_ in chain}
    while True:
        cycle: list[tuple[TimelineSpan, str, int]] = []
        for index, (stage, kind, wall_s, cpu_ratio) in enumerate(chain):
            host = "local"
            if offloaded and stage == "core_logic":
                host, wall_s = "B", wall_s / B_SPEEDUP
            error = pipeline == "pipeline_1" and stage == "storage" and cycles == 2
            sampled = stage == "core_logic" and calls[stage] == 1
            cycle.append((TimelineSpan(pipeline, stage, host, round(t, 6), wall_s, wall_s * cpu_ratio, error,
                                       sampled), kind, index))
            t += wall_s + 0.01
        if t > RUN_S:
            break
        for span, kind, index in cycle:
            _record_call(rec, wall, cpu, span, kind, index)
            calls[span.stage] += 1
        cpu.t += 0.02  # the framework's own CPU in each cycle, outside the stages
        rec.add_cycle(pipeline, sum(span.wall_s for span, *_ in cycle))
        cycles += 1
    rec.on_pipeline_end(pipeline)


def reference_profile(offloaded: bool = True, call_tree: CallTree | None = None) -> Profile:
    """The reference flow run for RUN_S seconds, each pipeline cycling in its own thread.

    Its calls go through a recorder on fake clocks and the profile is built from it as
    `wiredprof analyze` builds one: means, p95 and the timeline are the recorder's.
    """
    wall, cpu = _FakeClock(), _FakeClock()
    rec = Recorder(clock=wall, cpu_clock=cpu, timeline_size=100_000)
    rec.mode = "threads"
    if offloaded:
        rec.stage_hosts["pipeline_3.core_logic"] = "B"
    for pipeline, chain in REFERENCE:
        thread = threading.Thread(target=_run_pipeline, args=(rec, wall, cpu, pipeline, chain, offloaded),
                                  name=f"{pipeline} (launch_pipeline)")
        thread.start()
        thread.join()
    for info in rec.threads.values():
        info.cpu_base = 0.0  # the fake CPU clock starts at zero (registering read the real one)
    profile = build_profile(
        rec,
        "samples/reference_flow.py",
        RUN_S,
        limits={"duration_s": RUN_S},
        call_trees=[call_tree] if call_tree else [],
        notes=["core_logic's 2nd call ran under pyinstrument and is kept out of the timings"],
        started_at=datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc),
    )
    return analyze(profile)


@pytest.fixture(scope="session")
def call_tree() -> CallTree:
    return real_call_tree()


@pytest.fixture
def profile(call_tree: CallTree) -> Profile:
    return reference_profile(offloaded=True, call_tree=call_tree)


@pytest.fixture
def before_profile(call_tree: CallTree) -> Profile:
    return reference_profile(offloaded=False, call_tree=call_tree)
