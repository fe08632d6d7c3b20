"""Turns a finished run's recorder into a `Profile` (plain data, ready to save)."""
from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from wiredprof import __version__
from wiredprof.hostinfo import memory_limit_bytes
from wiredprof.profile import (
    CallTree,
    Competitor,
    ErrorInfo,
    OffloadEvent,
    PipelineStats,
    Profile,
    StageStats,
    ThreadCpu,
)
from wiredprof.profiling.recorder import Recorder, StageAccumulator, ThreadInfo
from wiredprof.profiling.threads import FRAMEWORK_SUFFIX
from wiredprof.profiling.wakeprobe import WakeStats
from wiredprof.profiling.workercalls import with_workers

__all__ = ["build_profile", "stage_stats"]


MEASURED_SHARE = 0.5  # core wait is a number only when this much of it comes from whole ticks


def _queued_for_a_core(acc: StageAccumulator, wait: float) -> float | None:
    """Time the stage was runnable but waited for a core (load, a CPU quota), at most `wait`;
    None: not measurable.

    Measured when the sampler could read the kernel's run delay of the stage's threads
    (/proc/.../schedstat): exact over the ticks the stage covered whole, prorated over the
    ticks it began or ended in. A stage whose calls are shorter than a tick (well under a
    millisecond, or a few ms against a 20 ms tick) is only ever seen in part of one, where
    its thread's queueing cannot be told from the rest of the tick's: prorated, a sub-ms
    stage beside a CPU hog showed several times the run delay its calls had. Unless at least
    `MEASURED_SHARE` of the time the sampler saw the stage was whole ticks, it is None.
    Otherwise (an older sampler report) estimated: the sampler saw the stage's thread in
    state R (on a core, or queued for one) in a share of its samples; that share of the wall
    time, less the CPU time it really got, was spent queued. Either way it comes off the
    wait before the GIL's share: a thread queued for a core is not waiting for the GIL
    (under load, a CPU-bound stage's queueing was once all called GIL wait).
    """
    if acc.queue_measured:
        if acc.queue_seen_s <= 0.0 or acc.queue_whole_s < MEASURED_SHARE * acc.queue_seen_s:
            return None  # below the sampler's resolution
        return min(acc.queue_s, wait)
    samples = acc.samples_running + acc.samples_lock_wait + acc.samples_io_wait
    if not samples:
        return 0.0
    runnable = acc.total * acc.samples_running / samples
    return min(max(0.0, runnable - acc.cpu), wait)


def stage_stats(acc: StageAccumulator) -> StageStats:
    """Freeze one accumulator into `StageStats`."""
    p95 = acc.quantile(0.95)
    wait = max(0.0, acc.total - acc.cpu)
    waits = acc.samples_lock_wait + acc.samples_io_wait
    # An offloaded stage's thread waits on its host's answer: that is no GIL wait.
    remote = acc.host != "local"
    # Queueing for a core comes off first: split by the blocked states' samples, an
    # overloaded machine's run-queue time was once all reported as GIL wait.
    queued = _queued_for_a_core(acc, wait) if not remote else 0.0
    gil_wait = (wait - (queued or 0.0)) * acc.samples_lock_wait / waits if waits and not remote else 0.0
    return StageStats(
        pipeline=acc.pipeline,
        stage=acc.stage,
        kind=acc.kind,
        calls=acc.calls,
        total_s=acc.total,
        mean_s=acc.mean,
        p95_s=p95,
        cpu_s=acc.cpu,
        host=acc.host,
        errors=acc.errors,
        index=acc.index,
        function=acc.function,
        max_s=acc.max,
        wait_s=wait,
        gil_wait_s=gil_wait,
        cpu_queue_s=queued,
        sampled_calls=acc.sampled,
        rss_peak_bytes=acc.rss_peak,
        # Totals over all calls, from the sampled calls' mean (what the planner divides by calls).
        bytes_in=round(acc.transfer_in / acc.transfer_samples * acc.calls) if acc.transfer_samples else acc.bytes_in,
        bytes_out=round(acc.transfer_out / acc.transfer_samples * acc.calls) if acc.transfer_samples else acc.bytes_out,
        retries=acc.retries,
        fallbacks=acc.fallbacks,
        retries_after_start=acc.retries_after_start,
        timeouts=acc.timeouts,
        link_losses=acc.link_losses,
        callbacks=acc.callbacks,
        callback_s=acc.callback_s,
        callback_cpu_s=acc.callback_cpu_s,
        callback_bytes=round(acc.callback_bytes / acc.callback_sized * acc.callbacks) if acc.callback_sized else 0,
        callback_pickle_s=acc.callback_pickle_s / acc.callback_sized * acc.callbacks if acc.callback_sized else 0.0,
        callback_unpickle_s=acc.callback_unpickle_s / acc.callback_sized * acc.callbacks if acc.callback_sized else 0.0,
        last_error=acc.last_error,
        state_samples={
            "running": acc.samples_running,
            "lock_wait": acc.samples_lock_wait,
            "io_wait": acc.samples_io_wait,
        },
        competitors=[
            Competitor(label.removesuffix(FRAMEWORK_SUFFIX), round(cpu, 6), label.endswith(FRAMEWORK_SUFFIX))
            for label, cpu in sorted(acc.competitors.items(), key=lambda kv: kv[1], reverse=True)[:8]
        ],
    )


def _wake_by_pipeline(rec: Recorder) -> dict[str, WakeStats]:
    """Per pipeline, the wake-up probe of the process(es) its threads ran in (wakeprobe.py)."""
    pids: dict[str, set[int]] = {}
    for info in rec.threads.values():
        if info.pipeline:
            pids.setdefault(info.pipeline, set()).add(os.getpid())
    for (pid, _tid), info in rec.child_threads.items():
        if info.pipeline:
            pids.setdefault(info.pipeline, set()).add(pid)
    out: dict[str, WakeStats] = {}
    for name, mine in pids.items():
        stats = WakeStats()
        for pid in mine:
            stats = stats.merged(rec.wake_by_pid.get(pid, WakeStats()))
        out[name] = stats
    return out


def _with_wake(stage: StageStats, wake: WakeStats | None, number: int | None) -> StageStats:
    """The stage with its process's wake-up wait while it was not running (see StageStats.wake_s)."""
    if wake is None or number is None or stage.host != "local":
        return stage
    excess, n = wake.excess_without_s([number])
    per_iteration, rounds = wake.ref_iteration_cpu_s(number)
    return replace(stage, wake_s=round(excess, 6), wake_samples=n, ref_iteration_cpu_s=per_iteration,
                   ref_rounds=rounds)


def _thread_rows(threads: list[ThreadInfo]) -> list[ThreadCpu]:
    rows = [ThreadCpu(t.name, t.pipeline, t.role, round(max(0.0, t.cpu - t.cpu_base), 6), round(t.stage_cpu, 6))
            for t in threads]
    return sorted(rows, key=lambda r: r.cpu_s, reverse=True)


def build_profile(
    rec: Recorder,
    flow: str,
    wall_s: float,
    *,
    argv: list[str] | None = None,
    status: str = "ok",
    error: ErrorInfo | None = None,
    notes: list[str] | None = None,
    limits: dict[str, Any] | None = None,
    call_trees: list[CallTree] | None = None,
    started_at: datetime | None = None,
    startup_s: float | None = None,
) -> Profile:
    """Everything the recorder holds, as a `Profile` without a bottleneck (see analysis).

    `startup_s` of the run's `wall_s` went by before the flow started its pipelines: a
    pipeline's utilisation is its busy share of the rest."""
    rec.settle()
    accs = sorted(rec.stages.values(), key=lambda a: (a.pipeline, a.index, a.stage))
    order: list[str] = []
    for a in accs:
        if a.pipeline not in order:
            order.append(a.pipeline)
    for name in rec.cycles:
        if name not in order:
            order.append(name)
    stages, timeline = with_workers(rec, [stage_stats(a) for a in accs], sorted(rec.timeline, key=lambda t: t.start_s))
    threads = _thread_rows(list(rec.threads.values()) + list(rec.child_threads.values()))
    wake = _wake_by_pipeline(rec)
    numbers = {(a.pipeline, a.stage): a.number for a in accs}
    stages = [_with_wake(s, wake.get(s.pipeline), numbers.get((s.pipeline, s.stage))) for s in stages]
    busy = {p: sum(s.total_s for s in stages if s.pipeline == p) for p in order}
    running_s = wall_s - min(startup_s or 0.0, wall_s)
    all_busy = sum(busy.values()) or 1.0
    pipelines = []
    for name in order:
        cyc = rec.cycles.get(name)
        mine = [s for s in stages if s.pipeline == name]
        if cyc is not None and cyc.timed:
            cycle_mean, runs, total, peak = cyc.total / cyc.timed, cyc.runs, cyc.total, cyc.max
            busy_s = cycle_mean * runs  # sampled cycles counted at the mean of the timed ones
        else:  # no timed cycle finished: the stages' means are the best estimate
            cycle_mean = sum(s.mean_s for s in mine)
            runs, total, peak = (cyc.runs if cyc is not None else 0), 0.0, cycle_mean
            busy_s = sum(s.total_s for s in mine)
        pipelines.append(
            PipelineStats(
                name=name,
                wall_s=cycle_mean,
                runs=runs,
                share=busy[name] / all_busy,
                total_s=total,
                max_s=peak,
                cpu_s=sum(s.cpu_s for s in mine),
                framework_cpu_s=sum(t.framework_cpu_s for t in threads if t.pipeline == name),
                errors=sum(s.errors for s in mine),
                utilisation=busy_s / running_s if running_s > 0 else 0.0,
                wake_s=round(wake[name].excess_s, 6) if name in wake else 0.0,
                wake_samples=wake[name].samples if name in wake else 0,
            )
        )
    return Profile(
        flow=flow,
        wall_s=wall_s,
        startup_s=None if startup_s is None else round(startup_s, 6),
        pipelines=pipelines,
        stages=stages,
        mode=rec.mode,
        host=rec.host,
        started_at=(started_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        argv=list(argv or []),
        status=status,
        error=error,
        notes=list(rec.notes) + list(notes or []),
        limits=dict(limits or {}),
        timeline=timeline,
        timeline_dropped=max(0, rec.timeline_seen - len(rec.timeline)),
        threads=threads,
        call_trees=list(call_trees or []),
        memory_bytes=memory_limit_bytes(),
        offload_events=[OffloadEvent(*e) for e in sorted(rec.offload_events)],
        environment={
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "platform": platform.platform(terse=True),
            "machine": socket.gethostname(),
            "wiredprof": __version__,
        },
    )
