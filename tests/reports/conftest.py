"""Hand-made profiles of the reference service (DESIGN.md, durations x 0.1) for the report tests.

`reference_profile(offloaded=True)` has pipeline_3's core_logic on host "B", one failed
storage call and one call sampled for call stacks, with a call tree from a real
pyinstrument session; `offloaded=False` is the same flow with everything on the local host.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from pyinstrument import Profiler

from wiredprof.analysis import analyze
from wiredprof.profile import CallTree, ErrorInfo, PipelineStats, Profile, StageStats, TimelineSpan
from wiredprof.profiling.calltree import CallTreeSampler

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


def reference_profile(offloaded: bool = True, call_tree: CallTree | None = None) -> Profile:
    """The reference flow run for RUN_S seconds, each pipeline cycling in its own thread."""
    spans: list[TimelineSpan] = []
    stats: list[StageStats] = []
    pipelines: list[PipelineStats] = []
    busy = {}
    for pipeline, chain in REFERENCE:
        t, cycles = 0.05, 0
        calls: dict[str, list[TimelineSpan]] = {s: [] for s, *_ in chain}
        while True:
            cycle: list[TimelineSpan] = []
            for stage, _kind, wall, cpu_ratio in chain:
                host = "local"
                if offloaded and stage == "core_logic":
                    host, wall = "B", wall / B_SPEEDUP
                error = pipeline == "pipeline_1" and stage == "storage" and cycles == 2
                sampled = stage == "core_logic" and len(calls[stage]) == 1
                cycle.append(
                    TimelineSpan(pipeline, stage, host, round(t, 6), wall, wall * cpu_ratio, error, sampled)
                )
                t += wall + 0.01
            if t > RUN_S:
                break
            spans.extend(cycle)
            for s in cycle:
                calls[s.stage].append(s)
            cycles += 1
        for index, (stage, kind, *_rest) in enumerate(chain):
            timed = [s for s in calls[stage] if not s.sampled]
            total = sum(s.wall_s for s in timed)
            failed = [s for s in timed if s.error]
            stats.append(
                StageStats(
                    pipeline,
                    stage,
                    kind,
                    len(timed),
                    total,
                    total / max(1, len(timed)),
                    max((s.wall_s for s in timed), default=0.0),
                    sum(s.cpu_s for s in timed),
                    calls[stage][0].host,
                    len(failed),
                    index=index,
                    sampled_calls=len(calls[stage]) - len(timed),
                    wait_s=sum(s.wall_s - s.cpu_s for s in timed),
                    last_error=ErrorInfo(
                        "OSError",
                        "disk <full> & 'slow'",
                        "Traceback (most recent call last):\n"
                        '  File "flow.py", line 9, in save\nOSError: disk <full>',
                    )
                    if failed
                    else None,
                )
            )
        busy[pipeline] = sum(s.wall_s for s in spans if s.pipeline == pipeline)
        pipelines.append(
            PipelineStats(
                pipeline,
                busy[pipeline] / max(1, cycles),
                cycles,
                0.0,
                total_s=busy[pipeline],
                cpu_s=sum(s.cpu_s for s in spans if s.pipeline == pipeline),
                framework_cpu_s=0.02 * cycles,
            )
        )
    all_busy = sum(busy.values())
    pipelines = [replace(p, share=p.total_s / all_busy) for p in pipelines]
    profile = Profile(
        flow="samples/reference_flow.py",
        wall_s=RUN_S,
        pipelines=pipelines,
        stages=stats,
        mode="threads",
        started_at="2026-11-25T06:00:00Z",
        limits={"duration_s": RUN_S},
        timeline=spans,
        call_trees=[call_tree] if call_tree else [],
        notes=["core_logic's 2nd call ran under pyinstrument and is kept out of the timings"],
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
