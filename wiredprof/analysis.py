"""Decide: the slowest pipeline, the bottleneck stage inside it, and the evidence."""
from __future__ import annotations

from dataclasses import dataclass

from wiredprof.profile import Bottleneck, Competitor, PipelineStats, Profile, StageStats

__all__ = ["CPU_BOUND", "GIL_BOUND", "classify", "find_bottleneck", "analyze", "per_cycle_s"]

# cpu/wall at or above this: the stage is busy on the CPU most of the time it runs.
CPU_BOUND = 0.6
# Share of its wall time spent blocked on the GIL (or a lock) while other threads ran.
GIL_BOUND = 0.3


@dataclass(frozen=True)
class Boundness:
    """How a stage spends its wall time."""

    bound: str  # "cpu" | "gil" | "wait" | "remote"
    cpu_ratio: float
    gil_ratio: float
    wait_ratio: float  # I/O and sleeps
    queue_ratio: float = 0.0  # waiting for a free core


def classify(stage: StageStats) -> Boundness:
    """CPU-bound, GIL-bound (waits while other threads run Python) or wait-bound (I/O, sleep)."""
    if stage.total_s <= 0:
        return Boundness("wait", 0.0, 0.0, 0.0)
    cpu = stage.cpu_s / stage.total_s
    gil = stage.gil_wait_s / stage.total_s
    queue = stage.cpu_queue_s / stage.total_s
    wait = max(0.0, 1.0 - cpu - gil - queue)
    if stage.host != "local":
        bound = "remote"  # its work happens on its host; here it only waits for the answer
    elif cpu + queue >= CPU_BOUND:  # on a CPU, or ready to be and queued for one
        bound = "cpu"
    elif gil >= GIL_BOUND:
        bound = "gil"
    else:
        bound = "wait"
    return Boundness(bound, cpu, gil, wait, queue)


def per_cycle_s(stage: StageStats, pipeline: PipelineStats) -> float:
    """Time the stage takes in one cycle of its pipeline (a stage may run several times a cycle)."""
    if pipeline.runs and stage.calls > pipeline.runs:
        return stage.total_s / pipeline.runs
    return stage.mean_s


def _competitors_text(competitors: list[Competitor], limit: int = 3) -> str:
    parts = []
    for c in competitors[:limit]:
        tag = ", framework" if c.framework else ""
        parts.append(f"{c.name} {c.cpu_s:.2f} s CPU{tag}")
    return "; ".join(parts)


def find_bottleneck(profile: Profile) -> Bottleneck | None:
    """The heaviest stage of the slowest pipeline, with the reason in one line."""
    ran = [p for p in profile.pipelines if any(s.calls for s in profile.stages if s.pipeline == p.name)]
    if not ran:
        return None

    # Rank by the stages' time per cycle: a cycle that is mostly code outside any stage
    # (a framework loop) must not hide the stage that really is slow.
    def stage_time(p: PipelineStats) -> float:
        return sum(per_cycle_s(s, p) for s in profile.stages if s.pipeline == p.name and s.calls)

    slowest = max(ran, key=stage_time)
    stages = [s for s in profile.stages if s.pipeline == slowest.name and s.calls]
    stage = max(stages, key=lambda s: per_cycle_s(s, slowest))
    t = per_cycle_s(stage, slowest)
    share = min(1.0, t / slowest.wall_s) if slowest.wall_s > 0 else 1.0
    b = classify(stage)
    head = (
        f"{stage.name}: {share:.0%} of the slowest pipeline's cycle "
        f"({t:.3g} s of {slowest.wall_s:.3g} s)"
    )
    # Competitors worth naming: at least 1 % of the stage's wall time in CPU.
    others = [c for c in stage.competitors if c.cpu_s >= 0.01 * stage.total_s]
    if b.bound == "remote":
        reason = f"{head}, runs on host {stage.host}: here it waits for the answer"
        others = []  # its thread only waits on a socket: nobody takes anything from it here
    elif b.bound == "cpu":
        reason = f"{head}, CPU-bound (cpu/wall {b.cpu_ratio:.2f}): a faster CPU shortens it"
        if b.queue_ratio >= 0.05:
            reason += (f"; it also waits {b.queue_ratio:.0%} of its time for a free core "
                       "(more busy threads and processes than cores)")
        if profile.mode == "threads" and others and b.gil_ratio >= 0.05:
            reason += f"; it also waits {b.gil_ratio:.0%} for the GIL: {_competitors_text(others)}"
    elif b.bound == "gil":
        reason = (
            f"{head}, GIL-bound: waits {b.gil_ratio:.0%} of its time for the GIL while other threads "
            f"run Python (cpu/wall {b.cpu_ratio:.2f})"
        )
        if others:
            reason += f": {_competitors_text(others)}"
    else:
        reason = (
            f"{head}, wait-bound: waits on I/O or sleep {b.wait_ratio:.0%} of its time "
            f"(cpu/wall {b.cpu_ratio:.2f}); a faster CPU will not help"
        )
    return Bottleneck(
        pipeline=stage.pipeline,
        stage=stage.stage,
        reason=reason,
        bound=b.bound,
        share_of_cycle=share,
        cpu_ratio=b.cpu_ratio,
        gil_wait_ratio=b.gil_ratio,
        competitors=others[:5],
    )


def analyze(profile: Profile) -> Profile:
    """The profile with its bottleneck decided."""
    return profile.with_bottleneck(find_bottleneck(profile))
