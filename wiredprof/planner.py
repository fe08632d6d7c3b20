"""Decide where a stage should run: predict what moving it to each host does to the flow.

Cost model, per call of a stage moved to host H:

    predicted = cpu / speed(H) + wait_io + transfer + round trip
    transfer  = (bytes in + bytes out) / bandwidth(H)

- `cpu` is the stage's CPU time here; `speed(H)` is H's single-thread speed relative to
  this machine, measured by `wiredprof hosts check` (the same pure-Python work timed on
  both sides). When the probe measured it, `speed(H)` is the CPU-time ratio: this
  machine's CPU seconds of the probe loop per wall second the loop takes on H. The time a
  stage was runnable here but queued for a CPU (a busy machine, or a cgroup CPU quota
  throttling it, as in a container with a CPU limit) is then not carried to H, where the
  stage's worker has a core: the CPU seconds are what moves. (With the wall-time ratio
  alone, a throttled stage's CPU seconds would be divided by the throttling a second time
  and its queued time kept as if it were I/O.)
- `wait_io` (I/O, sleeps) does not get faster on a faster CPU and stays as it is.
- GIL wait disappears: on H the stage runs in a worker process of its own, and the local
  thread waits on a socket without holding the GIL. In threads mode the CPU the stage
  used leaves this process's GIL, so the other stages that waited for it while it ran
  get that wait back (up to their own GIL wait).
- The one-off start cost (connect and bootstrap) is paid once per run, reported apart.
- A stage whose peak memory does not fit in H is never placed there; one that does not fit
  here is moved to a host where it fits, faster or not.

A pipeline's cycle is the sum of its stages' time per cycle; the flow's cycle is its
slowest pipeline's, since pipelines run side by side.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from wiredprof.analysis import classify, per_cycle_s
from wiredprof.profile import PipelineStats, Profile, StageStats

__all__ = ["HostCapacity", "Recommendation", "Plan", "PLAN_SCHEMA", "make_plan", "predict_move"]

PLAN_SCHEMA = "wiredprof.plan/1"
# Share of a host's memory a single stage may plan to use.
MEMORY_HEADROOM = 0.9
# A move is recommended only when it saves at least this share of the pipeline's cycle.
MIN_GAIN_SHARE = 0.02


@dataclass(frozen=True)
class HostCapacity:
    """What the planner needs to know about a host (from `wiredprof hosts check`)."""

    name: str
    cpu_speed_ratio: float  # single-thread speed relative to this machine (4.0 = 4x faster)
    # This machine's CPU seconds of the probe loop per wall second on the host (0: unknown);
    # equal to cpu_speed_ratio unless the probe waited here for a CPU (load, a CPU quota).
    cpu_time_ratio: float = 0.0
    memory_bytes: int = 0  # 0: unknown
    cores: int = 0
    rtt_s: float = 0.0
    bandwidth_bytes_per_s: float = 0.0  # 0: unknown (transfer not counted)
    start_s: float = 0.0  # connect + bootstrap, once per run
    probed_at: str = ""


@dataclass(frozen=True)
class Recommendation:
    """Moving one stage to one host: the prediction and whether it is worth it."""

    stage: str
    host: str
    current_s: float  # the stage's time per call here
    predicted_s: float  # on the host
    gain_s: float  # per cycle of the stage's pipeline
    pipeline: str = ""
    pipeline_cycle_s: float = 0.0
    predicted_pipeline_cycle_s: float = 0.0
    flow_cycle_s: float = 0.0
    predicted_flow_cycle_s: float = 0.0
    start_s: float = 0.0
    recommended: bool = False
    reason: str = ""
    bound: str = ""

    @property
    def stage_speedup(self) -> float:
        return self.current_s / self.predicted_s if self.predicted_s > 0 else 0.0


@dataclass(frozen=True)
class Plan:
    """Every (stage, host) worth considering, best first."""

    recommendations: list[Recommendation]
    profile: str = ""
    flow: str = ""
    hosts: list[HostCapacity] = field(default_factory=list)
    schema: str = PLAN_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "profile": self.profile,
            "flow": self.flow,
            "hosts": [asdict(h) for h in self.hosts],
            "recommendations": [asdict(r) for r in self.recommendations],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def best(self) -> Recommendation | None:
        return next((r for r in self.recommendations if r.recommended), None)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def predict_move(stage: StageStats, host: HostCapacity) -> float:
    """The stage's predicted time per call on `host` (see the module docstring)."""
    calls = max(stage.calls, 1)
    cpu = stage.cpu_s / calls
    gil = stage.gil_wait_s / calls
    queue = stage.cpu_queue_s / calls
    io = max(0.0, stage.mean_s - cpu - gil - queue)
    transfer = 0.0
    if host.bandwidth_bytes_per_s > 0:
        transfer = (stage.bytes_in + stage.bytes_out) / calls / host.bandwidth_bytes_per_s
    if host.cpu_time_ratio > 0:
        compute = cpu / host.cpu_time_ratio  # queued time stays here: the worker on H has a core
    else:
        compute = cpu / max(host.cpu_speed_ratio, 1e-9) + queue  # no CPU-time ratio: keep it as waiting
    return compute + io + transfer + host.rtt_s


def _freed_gil(profile: Profile, moved: StageStats, pipes: dict[str, PipelineStats]) -> dict[str, float]:
    """Per pipeline: GIL wait per cycle the others get back when `moved` leaves the process."""
    if profile.mode != "threads":
        return {}
    freed: dict[str, float] = {}
    for s in profile.stages:
        if s is moved or not s.calls or s.gil_wait_s <= 0:
            continue
        held = sum(c.cpu_s for c in s.competitors if c.name == moved.name)
        if held <= 0:
            continue
        p = pipes.get(s.pipeline)
        runs = p.runs if p is not None and p.runs else s.calls
        back = min(s.gil_wait_s, held) / max(runs, 1)
        freed[s.pipeline] = freed.get(s.pipeline, 0.0) + back
    return freed


def _recommend(profile: Profile, stage: StageStats, host: HostCapacity) -> Recommendation:
    pipes = {p.name: p for p in profile.pipelines}
    pipe = pipes.get(stage.pipeline)
    cycles = {p.name: p.wall_s for p in profile.pipelines}
    flow_cycle = max(cycles.values(), default=0.0)
    b = classify(stage)
    current = stage.mean_s
    predicted = predict_move(stage, host)
    per_cycle_calls = (per_cycle_s(stage, pipe) / current) if pipe is not None and current > 0 else 1.0
    gain = (current - predicted) * per_cycle_calls
    new_cycles = dict(cycles)
    if pipe is not None:
        new_cycles[stage.pipeline] = max(0.0, cycles[stage.pipeline] - gain)
    for name, back in _freed_gil(profile, stage, pipes).items():
        if name != stage.pipeline:
            new_cycles[name] = max(0.0, new_cycles[name] - back)
    pipe_cycle = cycles.get(stage.pipeline, 0.0)
    common: dict[str, Any] = dict(
        stage=stage.name,
        host=host.name,
        current_s=current,
        predicted_s=predicted,
        gain_s=gain,
        pipeline=stage.pipeline,
        pipeline_cycle_s=pipe_cycle,
        predicted_pipeline_cycle_s=new_cycles.get(stage.pipeline, 0.0),
        flow_cycle_s=flow_cycle,
        predicted_flow_cycle_s=max(new_cycles.values(), default=0.0),
        start_s=host.start_s,
        bound=b.bound,
    )
    peak = stage.rss_peak_bytes
    if host.memory_bytes and peak and peak > MEMORY_HEADROOM * host.memory_bytes:
        return Recommendation(**common, reason=f"does not fit: needs {_gib(peak)}, {host.name} has {_gib(host.memory_bytes)}")
    here = profile.memory_bytes
    if here and peak and peak > MEMORY_HEADROOM * here and host.memory_bytes:
        # It does not fit here: moving it is worth it even on a host that is no faster.
        return Recommendation(
            **common, recommended=True,
            reason=f"does not fit here: needs {_gib(peak)} of this host's {_gib(here)}; "
                   f"{host.name} has {_gib(host.memory_bytes)}",
        )
    if stage.host != "local":
        return Recommendation(**common, reason=f"already runs on {stage.host}")
    if b.bound == "wait":
        return Recommendation(
            **common,
            reason=(f"not recommended: waits on I/O {b.wait_ratio:.0%} of its time; a faster CPU will not help"),
        )
    if gain <= MIN_GAIN_SHARE * max(pipe_cycle, 1e-9):
        why = "slower" if gain < 0 else "no real gain"
        return Recommendation(
            **common,
            reason=f"not recommended: {why} on {host.name} (x{host.cpu_speed_ratio:.2f} CPU, "
                   f"{host.rtt_s * 1e3:.1f} ms round trip)",
        )
    speed = f"{host.name} runs Python x{host.cpu_speed_ratio:.2f} as fast"
    parts = [f"{b.bound}-bound ({b.cpu_ratio:.0%} CPU" + (f", {b.gil_ratio:.0%} GIL wait)" if b.gil_ratio >= 0.05 else ")"),
             speed]
    if b.gil_ratio >= 0.05:
        parts.append("in a worker process of its own it no longer waits for this process's GIL")
    fits = ""
    if peak and host.memory_bytes:
        fits = f"; needs {_gib(peak)}, fits in {_gib(host.memory_bytes)}"
    return Recommendation(**common, recommended=True, reason="; ".join(parts) + fits)


def make_plan(profile: Profile, hosts: list[HostCapacity], profile_path: str = "") -> Plan:
    """Rank every (stage, host): recommended moves by gain first, then the rest with their reason."""
    recs = [_recommend(profile, s, h) for s in profile.stages if s.calls for h in hosts]
    recs.sort(key=lambda r: (not r.recommended, -(r.flow_cycle_s - r.predicted_flow_cycle_s), -r.gain_s))
    return Plan(recommendations=recs, profile=profile_path, flow=profile.flow, hosts=list(hosts))
