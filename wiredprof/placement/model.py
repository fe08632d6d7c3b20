"""Decide where a stage should run: predict what moving it to each host does to the flow.

Cost model, per call of a stage moved to host H:

    predicted = own cpu / speed(H) x contention(H) + own wait + transfer + round trip
                + call-backs: their time on A + a round trip each + their bytes / bandwidth(H)
                  + pickling them on both sides
    transfer  = (bytes in + bytes out) / bandwidth(H)

- `own cpu` is the stage's CPU time here less what its call-backs used; `speed(H)` is H's
  single-thread speed relative to this machine, measured by `wiredprof hosts check`
  (the same pure-Python work timed on both sides, repeated until it agrees). When the
  probe measured it, `speed(H)` is the CPU-time ratio: this machine's CPU seconds of the
  probe loop per wall second the loop takes on H. The time a stage was runnable here but
  queued for a CPU (a busy machine, or a cgroup CPU quota throttling it, as in a
  container with a CPU limit) is then not carried to H, where the stage's worker has a
  core: the CPU seconds are what moves.
- Better than the probe's ratio, when the profile has it: this machine's CPU per iteration of
  the probe's loop as the stage ran (reference rounds timed in its process while it was in
  progress, profiling/wakeprobe.py) over the host's wall per iteration (`hosts check`). The
  stage's CPU seconds were paid at that moment's speed, under that moment's throttling and
  cache pollution; a probe taken here later, alone, sees neither (`stage_time_ratio`).
- Call-backs: calls the stage makes on objects that stay on this host (wiredflow's
  storages in `db_connectors`, see `profiling/callbacks.py`) are measured per call; on H
  each is a round trip back here, and its work stays here. When they are most of the
  predicted time, the move is not recommended.
- `contention(H)`: a probe reads how many of H's cores were busy. When H is this same
  machine (same machine-id and boot id), the flow's own busy threads (which stay here)
  share its cores with the moved stage: with more runnable threads than cores, each gets
  cores / threads of one. The probe's loop already ran under H's other load, so only the
  flow's own share is charged on top of it.
- `wait_io` (I/O, sleeps) does not get faster on a faster CPU and stays as it is.
- GIL wait disappears: on H the stage runs in a worker process of its own, and the local
  thread waits on a socket without holding the GIL. But each reply (and each call-back)
  wakes threads here one after another (`HostCapacity.reply_wakes`: for SSH paramiko's
  transport thread, the session's receiver, the caller; and the start acknowledgement's
  two, `ack_wakes`, unless the call's work on the host outlasts them), and each waits for this
  process's GIL and a core as long as the pipeline's process measured
  (`PipelineStats.wake_s`, profiling/wakeprobe.py): in a process whose other threads
  busy-loop that is milliseconds a wake-up, and it stays. In threads mode the CPU the stage
  used leaves this process's GIL, so the other stages that waited for it while it ran
  get that wait back (up to their own GIL wait).
- Each prediction has a range (`predicted_low_s`, `predicted_high_s`): the spread of the
  stage's own calls (p95 over mean, for a mean of that many calls), the probe's slowest
  and fastest rounds (a shared host's load comes and goes), and for a shared machine the
  gap between free and charged cores. A measurement inside it is a hit.
- The one-off start cost (connect and bootstrap) is paid once per run, reported apart.
- A stage whose peak memory does not fit in H is never placed there; one that does not fit
  here is moved to a host where it fits, faster or not.
- Only stages that `wiredprof offload` accepts are ranked (`stages.offload_refusal`):
  wiredflow's built-in connectors, storages and sends are listed, never recommended.

A pipeline's cycle is the sum of its stages' time per cycle; the flow's cycle is its
slowest pipeline's, since pipelines run side by side.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from wiredprof.analysis import classify, per_cycle_s, utilisation
from wiredprof.placement.capacity import HostCapacity
from wiredprof.profile import PipelineStats, Profile, StageStats

__all__ = ["Recommendation", "Plan", "Prediction", "PLAN_SCHEMA", "make_plan", "predict",
           "predict_move", "flow_busy_cores", "stage_time_ratio"]

_SHARING_ROUNDS = 20  # fixed-point rounds of the slow-down on a shared cluster (converges in a few)
PLAN_SCHEMA = "wiredprof.plan/1"
# Share of a host's memory a single stage may plan to use.
MEMORY_HEADROOM = 0.9
# A move is recommended only when it saves at least this share of the pipeline's cycle.
MIN_GAIN_SHARE = 0.02
# The probe's loop got a core of its own when its CPU over wall time is at least this (the rest:
# the kernel's time and timer slop, 0.3 % on an idle host): only below it does its share say
# how many other threads were runnable there (at 0.997, "1.01 other threads" on 2 cores, and a
# charge of 2.5 % on an idle host).
WHOLE_CORE_SHARE = 0.95
# Call-backs to A above this share of the predicted time: the move is not recommended.
CALLBACK_DOMINANT = 0.5
# A stage's spread is at least this (p95 from a sketch with 1 % error, timers, one call only),
# and at most this.
MIN_STAGE_SPREAD = 0.03
MAX_STAGE_SPREAD = 0.5
# A thread busy this share of the run outside stages is a busy loop (it takes any freed GIL).
SPINNER_SHARE = 0.3
# Reference rounds a stage needs in its profile before they replace the probe's CPU-time ratio.
MIN_REF_ROUNDS = 3


@dataclass(frozen=True)
class Prediction:
    """A stage's predicted time per call on a host, its range and its parts."""

    seconds: float
    low_s: float
    high_s: float
    compute_s: float = 0.0  # the stage's own CPU work on the host (contention included)
    wait_s: float = 0.0  # its own I/O and sleeps, unchanged
    transfer_s: float = 0.0  # arguments and result over the link, plus one round trip
    callback_s: float = 0.0  # call-backs: work on A, a round trip each, their bytes
    callbacks_per_call: float = 0.0
    contention: float = 1.0  # compute slowed this much by cores shared with the flow
    flow_busy_cores: float = 0.0  # the flow's own busy cores charged on a shared host
    side_by_side: float = 0.0  # calls of other stages already on the host, running at once (mean)
    wake_s: float = 0.0  # threads here waking to hand the reply and call-backs on: GIL and core waits
    wakes_per_call: float = 0.0
    time_ratio: float = 0.0  # this machine's CPU seconds per wall second on the host (stage_time_ratio)
    from_rounds: bool = False  # ... from the stage's own reference rounds, not the probe's local side

    @property
    def callback_share(self) -> float:
        return self.callback_s / self.seconds if self.seconds > 0 else 0.0


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
    predicted_low_s: float = 0.0  # the prediction's range: a measurement inside it is a hit
    predicted_high_s: float = 0.0
    callbacks_per_call: float = 0.0  # calls back to objects that stay on this host
    callback_s: float = 0.0  # predicted time per call spent on those call-backs
    offloadable: bool = True  # False: `wiredprof offload` refuses this stage

    @property
    def stage_speedup(self) -> float:
        return self.current_s / self.predicted_s if self.predicted_s > 0 else 0.0

    def hit(self, measured_s: float) -> bool:
        """True when a measured time per call is inside the predicted range."""
        return self.predicted_low_s <= measured_s <= self.predicted_high_s


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


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1e3:.1f} ms"


def flow_busy_cores(profile: Profile, moved: StageStats) -> float:
    """Cores the flow keeps busy here once `moved` runs elsewhere (CPU seconds per second).

    Every thread's CPU over the run's wall time, less the moved stage's; in threads mode a
    busy loop (a thread busy outside stages most of the run, like wiredflow's MQTT loop)
    takes the GIL time the moved stage frees, so then nothing is taken off.
    """
    wall = profile.wall_s
    if wall <= 0:
        return 0.0
    if profile.threads:
        total = sum(t.cpu_s for t in profile.threads)
        spinner = any(t.framework_cpu_s > SPINNER_SHARE * wall for t in profile.threads)
    else:
        total = sum(s.cpu_s for s in profile.stages) + sum(p.framework_cpu_s for p in profile.pipelines)
        spinner = any(p.framework_cpu_s > SPINNER_SHARE * wall for p in profile.pipelines)
    if not (profile.mode == "threads" and spinner):
        total -= moved.cpu_s
    return max(0.0, total / wall)


def mean_spread(stage: StageStats) -> float:
    """Relative half-width of a 95 % interval for the gap between two runs' mean times per call.

    From the spread of its calls: p95 - mean is about 1.645 standard deviations (a normal
    approximation); a mean of n calls varies by sd / sqrt(n), and the prediction is set
    against another run's mean, which varies as much: 1.96 x sqrt(2) x sd / sqrt(n).
    """
    if stage.calls < 2 or stage.mean_s <= 0:
        return 0.0
    sd = max(0.0, stage.p95_s - stage.mean_s) / 1.645
    return 1.96 * math.sqrt(2.0) * sd / math.sqrt(stage.calls) / stage.mean_s


def _share(cores: int, runnable: float) -> float:
    """The share of one core a thread gets when `runnable` threads want `cores` cores."""
    return min(1.0, cores / runnable) if runnable > 0 and cores > 0 else 1.0


def stage_time_ratio(stage: StageStats, host: HostCapacity) -> tuple[float, bool]:
    """(this machine's CPU seconds per wall second on `host` for the stage's work, from its reference rounds?).

    The stage's own reference rounds over the host's time for the same loop when both were
    measured (at least MIN_REF_ROUNDS rounds), else the probe's CPU-time ratio (0: unknown).
    """
    if host.loop_iteration_s > 0 and stage.ref_rounds >= MIN_REF_ROUNDS and stage.ref_iteration_cpu_s > 0:
        return stage.ref_iteration_cpu_s / host.loop_iteration_s, True
    return host.cpu_time_ratio, False


def predict(stage: StageStats, host: HostCapacity, profile: Profile | None = None) -> Prediction:
    """The stage's predicted time per call on `host`, with its range (see the module docstring)."""
    calls = max(stage.calls, 1)
    mean = stage.mean_s
    cpu = stage.cpu_s / calls
    cb_n = stage.callbacks / calls
    cb_wall = min(stage.callback_s / calls, mean)
    cb_cpu = min(stage.callback_cpu_s / calls, cpu)
    own_wall = max(0.0, mean - cb_wall)
    own_cpu = max(0.0, cpu - cb_cpu)
    frac = own_wall / mean if mean > 0 else 1.0
    gil = stage.gil_wait_s / calls * frac
    queue = (stage.cpu_queue_s or 0.0) / calls * frac  # None: below the sampler's resolution
    io = max(0.0, own_wall - own_cpu - gil - queue)
    transfer = 0.0
    bandwidth = host.bandwidth_bytes_per_s
    if bandwidth > 0:
        transfer = (stage.bytes_in + stage.bytes_out) / calls / bandwidth
    ratio, from_rounds = stage_time_ratio(stage, host)
    if ratio > 0:
        compute = own_cpu / ratio  # queued time stays here: the worker on H has a core
    else:
        compute = own_cpu / max(host.cpu_speed_ratio, 1e-9) + queue  # no CPU-time ratio: keep it as waiting
    contention, busy = 1.0, 0.0
    if host.same_machine and profile is not None and host.cores:
        busy = flow_busy_cores(profile, stage)
        # The probe already ran under the host's other load: charge only the flow's own share.
        # That load in runnable threads: busy cores, or more when the probe's loop was queued.
        other = host.busy_cores
        if 0 < host.loop_share < WHOLE_CORE_SHARE:
            other = max(other, host.cores / host.loop_share - 1.0)
        contention = _share(host.cores, other + 1.0) / _share(host.cores, other + busy + 1.0)
    beside, slowdown = side_by_side(profile, stage, host) if profile is not None else (0.0, 1.0)
    contention *= slowdown  # calls of several pipelines share the host's slots (a cluster's workers)
    uncharged = compute
    compute *= contention
    callback = 0.0
    if cb_n > 0:
        speed = ratio or host.cpu_speed_ratio or 1.0
        # The work stays here; each call crosses twice; its values are pickled here (as measured
        # here) and unpickled there (at the host's speed, sharing its cores like the compute).
        unpickling = stage.callback_unpickle_s / calls / speed * contention
        callback = cb_wall + cb_n * host.rtt_s + stage.callback_pickle_s / calls + unpickling
        if bandwidth > 0:
            callback += stage.callback_bytes / calls / bandwidth
    wake_each = _wake_wait(profile, stage) if profile is not None else 0.0
    wakes = host.reply_wakes * (1.0 + cb_n)
    if host.ack_wakes and wake_each > 0:  # the acknowledgement's wake-ups B's work does not hide
        wakes += host.ack_wakes * max(0.0, 1.0 - (compute + io) / (host.ack_wakes * wake_each))
    wake = wakes * wake_each
    seconds = compute + io + transfer + host.rtt_s + callback + wake
    # The range: the stage's own spread (all its parts), the probe's (its compute), and down
    # to no charge for shared cores. With the probe's fastest and slowest rounds known, the
    # compute spans them (a shared host's load comes and goes); else the rounds' spread.
    rel_stage = min(MAX_STAGE_SPREAD, max(MIN_STAGE_SPREAD, mean_spread(stage)))
    fast, slow = uncharged, compute
    if ratio > 0 and 0 < host.ratio_low <= host.cpu_time_ratio <= host.ratio_high:
        fast = uncharged * host.cpu_time_ratio / host.ratio_high
        slow = compute * host.cpu_time_ratio / host.ratio_low
        probe_rel = 0.0
    else:
        probe_rel = host.ratio_spread
    delta = math.hypot(compute * math.hypot(rel_stage, probe_rel), (io + callback + transfer + wake) * rel_stage)
    low = max(0.0, seconds - (compute - fast) - delta)
    high = seconds + (slow - compute) + delta
    return Prediction(
        seconds=seconds, low_s=low, high_s=high, compute_s=compute, wait_s=io,
        transfer_s=transfer + host.rtt_s, callback_s=callback, callbacks_per_call=cb_n,
        contention=contention, flow_busy_cores=busy, side_by_side=beside, wake_s=wake, wakes_per_call=wakes,
        time_ratio=ratio, from_rounds=from_rounds,
    )


def _wake_wait(profile: Profile, stage: StageStats) -> float:
    """Seconds a thread of the stage's process waited for the GIL and a core each time it woke (0: not measured).

    The wake-ups while the stage itself was not running when the profile has them: a stage's own
    CPU use (a quota it exhausts, in a process of its own) delays wake-ups only while it runs here.
    """
    if stage.wake_samples:
        return stage.wake_s
    for p in profile.pipelines:
        if p.name == stage.pipeline:
            return p.wake_s if p.wake_samples else 0.0
    return 0.0


def side_by_side(profile: Profile, moved: StageStats, host: HostCapacity) -> tuple[float, float]:
    """(calls of other stages in flight on `host` beside one of `moved`, on average; the slow-down).

    Each stage that already runs on `host` in `profile` is busy there `b = total_s / wall_s`
    of the run (its pipeline calls it sequentially). With more calls than slots (a Dask
    cluster: one per worker process, whose threads share its GIL), each gets slots / calls of
    one, so every call takes `c` times longer; the others' calls then last longer too, and
    their pipelines' busy share grows to `c b / (c b + 1 - b)`: `c` is the fixed point.
    """
    if profile.wall_s <= 0:
        return 0.0, 1.0
    shares = [min(1.0, s.total_s / profile.wall_s) for s in profile.stages
              if s.host == host.name and s is not moved and s.calls]
    slots = host.slots or host.cores or 1
    slowdown, beside = 1.0, sum(shares)
    for _ in range(_SHARING_ROUNDS):
        beside = sum(slowdown * b / (slowdown * b + 1.0 - b) if b < 1.0 else 1.0 for b in shares)
        slowdown = 1.0 / _share(slots, beside + 1.0)
    return beside, slowdown


def predict_move(stage: StageStats, host: HostCapacity, profile: Profile | None = None) -> float:
    """The stage's predicted time per call on `host` (see the module docstring)."""
    return predict(stage, host, profile).seconds


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


def _callback_text(pred: Prediction, stage: StageStats) -> str:
    calls = max(stage.calls, 1)
    n = pred.callbacks_per_call
    mib = stage.callback_bytes / calls / 2**20
    return (f"{n:.3g} call-back{'s' if n != 1 else ''} to A per call (db_connectors and the like: "
            f"{_ms(min(stage.callback_s / calls, stage.mean_s))} of work that stays here, "
            f"{mib:.2f} MiB over the link, a round trip each) = {_ms(pred.callback_s)} "
            f"of the {_ms(pred.seconds)} predicted")


def _wake_text(pred: Prediction) -> str:
    each = pred.wake_s / pred.wakes_per_call if pred.wakes_per_call else 0.0
    return (f"each call still wakes {pred.wakes_per_call:.3g} threads here one after another (the reply handed "
            f"to the caller), each waiting {_ms(each)} for this process's GIL and a core (measured): "
            f"{_ms(pred.wake_s)} a call stays here")


def _shared_text(host: HostCapacity, pred: Prediction) -> str:
    if pred.side_by_side > 0:
        return (f"{pred.side_by_side:.2f} call(s) of other stages already on {host.name} run at once, on "
                f"{host.slots or host.cores} slot(s) (worker processes or cores), so its CPU part takes "
                f"x{pred.contention:.2f} longer")
    return (f"{host.name} is this machine (same machine-id and boot id): its {host.cores} cores are shared "
            f"with this flow's busy threads ({pred.flow_busy_cores:.2f} cores) and other work "
            f"({host.busy_cores:.2f} cores), so its CPU part takes x{pred.contention:.2f} longer")


def _recommend(profile: Profile, stage: StageStats, host: HostCapacity, refusal: str = "") -> Recommendation:
    pipes = {p.name: p for p in profile.pipelines}
    pipe = pipes.get(stage.pipeline)
    cycles = {p.name: p.wall_s for p in profile.pipelines}
    flow_cycle = max(cycles.values(), default=0.0)
    b = classify(stage)
    current = stage.mean_s
    pred = predict(stage, host, profile)
    predicted = pred.seconds
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
        predicted_low_s=pred.low_s,
        predicted_high_s=pred.high_s,
        callbacks_per_call=pred.callbacks_per_call,
        callback_s=pred.callback_s,
    )
    if refusal:
        return Recommendation(**common, offloadable=False, reason=f"not offloadable: {refusal}")
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
        # Its call-backs were measured as B made them (the proxy's bytes): say what they cost.
        backs = f"; {_callback_text(pred, stage)}" if pred.callbacks_per_call > 0 else ""
        return Recommendation(**common, reason=f"already runs on {stage.host}{backs}")
    notes = []
    if pred.callbacks_per_call > 0:
        notes.append(_callback_text(pred, stage))
    if pred.contention > 1.005:
        notes.append(_shared_text(host, pred))
    if pred.wake_s >= 0.05 * max(pred.seconds, 1e-9):
        notes.append(_wake_text(pred))
    if host.noisy:
        notes.append(f"the probe of {host.name} was noisy (speed ratio spread ±{host.ratio_spread:.0%})")
    tail = "".join(f"; {n}" for n in notes)
    if pred.callbacks_per_call > 0 and pred.callback_share >= CALLBACK_DOMINANT:
        return Recommendation(
            **common, reason=f"not recommended: call-backs to A dominate ({pred.callback_share:.0%} of its "
                             f"predicted time on {host.name}){tail}")
    if b.bound == "wait" and pred.callbacks_per_call == 0:
        return Recommendation(
            **common,
            reason=(f"not recommended: waits on I/O {b.wait_ratio:.0%} of its time; a faster CPU will not help"),
        )
    if profile.bottleneck is not None and profile.bottleneck.bound == "idle":
        busy = utilisation(pipe, profile) if pipe is not None else 0.0
        return Recommendation(
            **common, reason=f"not recommended: the flow is limited by its schedule, not by a stage ({stage.pipeline} "
                             f"is busy {busy:.0%} of the time): a shorter cycle would not make it do more{tail}")
    if gain <= MIN_GAIN_SHARE * max(pipe_cycle, 1e-9):
        why = "slower" if gain < 0 else "no real gain"
        return Recommendation(
            **common,
            reason=f"not recommended: {why} on {host.name} (x{host.cpu_speed_ratio:.2f} CPU, "
                   f"{host.rtt_s * 1e3:.1f} ms round trip){tail}",
        )
    speed = f"{host.name} runs Python x{host.cpu_speed_ratio:.2f} as fast"
    if pred.from_rounds:
        speed += (f" (x{pred.time_ratio:.2f} the CPU time this stage's process took for the same work as it ran: "
                  f"{stage.ref_rounds} reference rounds)")
    parts = [f"{b.bound}-bound ({b.cpu_ratio:.0%} CPU" + (f", {b.gil_ratio:.0%} GIL wait)" if b.gil_ratio >= 0.05 else ")"),
             speed]
    in_callbacks = min(1.0, stage.callback_s / stage.total_s) if stage.total_s > 0 else 0.0
    own_gil = stage.gil_wait_s / max(stage.calls, 1) * (1.0 - in_callbacks)
    if current > 0 and own_gil / current >= 0.05:
        parts.append("in a worker process of its own its Python work no longer waits for this process's GIL")
    fits = ""
    if peak and host.memory_bytes:
        fits = f"; needs {_gib(peak)}, fits in {_gib(host.memory_bytes)}"
    return Recommendation(**common, recommended=True, reason="; ".join(parts) + fits + tail)


def make_plan(
    profile: Profile, hosts: list[HostCapacity], profile_path: str = "", refusals: Mapping[str, str] | None = None
) -> Plan:
    """Rank every (stage, host): recommended moves by gain first, then the rest with their reason.

    `refusals` maps "PIPELINE.STAGE" to why `wiredprof offload` refuses it (see
    `stages.offload_refusal`); such stages are listed last and never recommended.
    """
    why = refusals or {}
    recs = [_recommend(profile, s, h, why.get(s.name, "")) for s in profile.stages if s.calls for h in hosts]
    recs.sort(key=lambda r: (not r.recommended, not r.offloadable,
                             -(r.flow_cycle_s - r.predicted_flow_cycle_s), -r.gain_s))
    return Plan(recommendations=recs, profile=profile_path, flow=profile.flow, hosts=list(hosts))
