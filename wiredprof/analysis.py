"""Decide: the slowest pipeline, the bottleneck stage inside it, and the evidence."""
from __future__ import annotations

import math
from dataclasses import dataclass

from wiredprof.profile import Bottleneck, Competitor, PipelineStats, Profile, StageStats, ThreadCpu

__all__ = [
    "CPU_BOUND", "GIL_BOUND", "IDLE_BELOW", "BUSY_LOOP", "classify", "find_bottleneck", "analyze", "per_cycle_s",
    "utilisation", "busy_loops",
]

# cpu/wall at or above this: the stage is busy on the CPU most of the time it runs.
CPU_BOUND = 0.6
# Share of its wall time spent blocked on the GIL (or a lock) while other threads ran.
GIL_BOUND = 0.3
# No pipeline busy more than this share of the run: the flow waits on its schedule.
IDLE_BELOW = 0.5
# A thread burning this share of a core outside any stage is a busy loop worth naming (a tenth:
# on a loaded machine a spinning thread gets only its share of a core).
BUSY_LOOP = 0.10
# Two candidates closer than this (relative), or than their calls' spread allows, are a tie.
NOISE_REL = 0.10


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
    queue = (stage.cpu_queue_s or 0.0) / stage.total_s  # None: not measurable, not counted
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


def utilisation(p: PipelineStats, profile: Profile) -> float:
    """Busy time over the run's wall time once the flow started (derived from cycles for profiles saved without it)."""
    if p.utilisation > 0 or profile.running_s <= 0:
        return p.utilisation
    return p.wall_s * p.runs / profile.running_s


def _thread_label(t: ThreadCpu) -> str:
    if t.role == "pipeline":
        return f"{t.pipeline} thread outside stages (framework)"
    if t.role == "mqtt-network":
        return f"{t.pipeline} MQTT network thread outside stages (framework)"
    if t.role == "main":
        return "main thread outside stages (framework)"
    return f"thread {t.thread} (user thread)"


def busy_loops(profile: Profile) -> list[tuple[str, float]]:
    """Threads burning CPU outside any stage (framework loops, user threads), biggest first."""
    if profile.running_s <= 0:
        return []
    loops = [(_thread_label(t), t.framework_cpu_s) for t in profile.threads
             if t.framework_cpu_s >= BUSY_LOOP * profile.running_s and not t.thread.startswith("wiredprof-")]
    return sorted(loops, key=lambda x: x[1], reverse=True)


def _spread_s(s: StageStats, t: float) -> float:
    """Standard error of a stage's time per cycle `t`, from its calls' spread (p95 - mean)."""
    if s.mean_s <= 0 or s.calls <= 0:
        return 0.0
    sd = max(0.0, s.p95_s - s.mean_s) / 1.645
    return sd / math.sqrt(s.calls) * t / s.mean_s


def _tie(a: float, a_se: float, b: float, b_se: float) -> bool:
    """True when `a` and `b` (each with its standard error) are within noise of each other."""
    return abs(a - b) <= max(NOISE_REL * max(a, b), 2 * math.hypot(a_se, b_se))


def _competitors_text(competitors: list[Competitor], limit: int = 3) -> str:
    parts = []
    for c in competitors[:limit]:
        tag = ", framework" if c.framework else ""
        parts.append(f"{c.name} {c.cpu_s:.2f} s CPU{tag}")
    return "; ".join(parts)


def find_bottleneck(profile: Profile) -> Bottleneck | None:
    """The heaviest stage of the slowest pipeline, with the reason in one line.

    A flow whose pipelines are all busy less than half the time has none: its schedule
    limits it (bound "idle"). Two candidates within noise of each other are both named.
    """
    ran = [p for p in profile.pipelines if any(s.calls for s in profile.stages if s.pipeline == p.name)]
    if not ran:
        return None

    def stages_of(p: PipelineStats) -> list[StageStats]:
        return [s for s in profile.stages if s.pipeline == p.name and s.calls]

    # Rank by the stages' time per cycle: a cycle that is mostly code outside any stage
    # (a framework loop) must not hide the stage that really is slow.
    def stage_time(p: PipelineStats) -> float:
        return sum(per_cycle_s(s, p) for s in stages_of(p))

    def stage_time_se(p: PipelineStats) -> float:
        return math.sqrt(sum(_spread_s(s, per_cycle_s(s, p)) ** 2 for s in stages_of(p)))

    # The same without the GIL waits: pipelines whose stages take turns on one GIL split its wait
    # unevenly run to run, so equal work behind unequal waits is a tie, not a verdict.
    def own_time(p: PipelineStats) -> float:
        return sum(per_cycle_s(s, p) * (1.0 - min(1.0, s.gil_wait_s / s.total_s) if s.total_s > 0 else 0.0)
                   for s in stages_of(p))

    ranked = sorted(ran, key=stage_time, reverse=True)
    slowest = ranked[0]
    stages = sorted(stages_of(slowest), key=lambda s: per_cycle_s(s, slowest), reverse=True)
    stage = stages[0]
    t = per_cycle_s(stage, slowest)
    share = min(1.0, t / slowest.wall_s) if slowest.wall_s > 0 else 1.0
    b = classify(stage)
    busiest = max(ran, key=lambda p: utilisation(p, profile))
    if utilisation(busiest, profile) <= IDLE_BELOW:
        return _idle(profile, busiest, stages_of(busiest))
    candidates: list[str] = []
    if len(ranked) > 1 and (_tie(stage_time(slowest), stage_time_se(slowest),
                                 stage_time(ranked[1]), stage_time_se(ranked[1]))
                            or _tie(own_time(slowest), stage_time_se(slowest),
                                    own_time(ranked[1]), stage_time_se(ranked[1]))):
        second = ranked[1]
        other = max(stages_of(second), key=lambda s: per_cycle_s(s, second))
        candidates = [stage.name, other.name]
        tie = (f"pipelines {slowest.name} and {second.name} take {stage_time(slowest):.3g} s and "
               f"{stage_time(second):.3g} s of stage time per cycle")
        if not math.isclose(own_time(slowest), stage_time(slowest), rel_tol=NOISE_REL):
            tie += (f", {own_time(slowest):.3g} s and {own_time(second):.3g} s without their GIL waits "
                    "(they take turns on one GIL)")
    elif len(stages) > 1 and _tie(t, _spread_s(stage, t), per_cycle_s(stages[1], slowest),
                                  _spread_s(stages[1], per_cycle_s(stages[1], slowest))):
        candidates = [stage.name, stages[1].name]
        tie = f"{t:.3g} s and {per_cycle_s(stages[1], slowest):.3g} s per cycle of {slowest.name}"
    if candidates:
        head = (f"no clear bottleneck: {candidates[0]} or {candidates[1]} ({tie}, within the noise of their "
                f"calls); {stage.name}")
    else:
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
        if others and b.gil_ratio >= 0.05:  # competitors are threads of its own process: they share its GIL
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
        candidates=candidates,
    )


def _idle(profile: Profile, busiest: PipelineStats, stages: list[StageStats]) -> Bottleneck:
    """The verdict for a flow no pipeline keeps busy: its schedule, and what burns CPU meanwhile."""
    u = utilisation(busiest, profile)
    stage = max(stages, key=lambda s: per_cycle_s(s, busiest))
    t = per_cycle_s(stage, busiest)
    reason = (
        f"none: the flow is limited by its schedule, not by a stage: no pipeline is busy more than "
        f"{IDLE_BELOW:.0%} of the time (the busiest, {busiest.name}, {u:.0%}: a cycle of {busiest.wall_s:.3g} s, "
        f"{busiest.runs} cycles in {profile.running_s:.3g} s; its heaviest stage {stage.name} {t:.3g} s a cycle)"
    )
    loops = busy_loops(profile)
    if loops:
        reason += "; the cost to look at: " + "; ".join(
            f"{label} burns {cpu:.3g} s CPU in {profile.running_s:.3g} s ({cpu / profile.running_s:.0%} of a core)"
            for label, cpu in loops[:3]
        )
    b = classify(stage)
    return Bottleneck(
        pipeline=stage.pipeline,
        stage=stage.stage,
        reason=reason,
        bound="idle",
        share_of_cycle=min(1.0, t / busiest.wall_s) if busiest.wall_s > 0 else 1.0,
        cpu_ratio=b.cpu_ratio,
        gil_wait_ratio=b.gil_ratio,
        competitors=[Competitor(label.removesuffix(" (framework)"), round(cpu, 6), label.endswith("(framework)"))
                     for label, cpu in loops[:5]],
    )


def analyze(profile: Profile) -> Profile:
    """The profile with its bottleneck decided."""
    return profile.with_bottleneck(find_bottleneck(profile))
