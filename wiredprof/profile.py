"""The profile: what one run of a flow measured, as a plain versioned data object.

Collect (spans) -> aggregate (this) -> decide (analysis, planner) -> show (reports).
A `Profile` saves to and loads from JSON (`wiredprof.profile/1`, see DESIGN.md) and
is all that `show`, `compare`, `plan` and the reports need.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from wiredprof.errors import ProfileFileError

__all__ = [
    "SCHEMA",
    "ErrorInfo",
    "StageStats",
    "WorkerShare",
    "PipelineStats",
    "TimelineSpan",
    "OffloadEvent",
    "ThreadCpu",
    "Competitor",
    "Bottleneck",
    "CallTree",
    "FlowInfo",
    "Profile",
    "load_profile",
]

SCHEMA = "wiredprof.profile/1"


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised inside a stage, with its original traceback."""

    type: str
    message: str
    traceback: str = ""

    def one_line(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class Competitor:
    """Who ran Python (and so held the GIL) while a stage's call was running."""

    name: str
    cpu_s: float
    framework: bool = False


@dataclass(frozen=True)
class WorkerShare:
    """The calls of an offloaded stage that one worker of its host ran (a Dask cluster has several)."""

    worker: str
    calls: int
    total_s: float  # wall seconds of those calls, as seen here
    remote_s: float = 0.0  # of which the worker ran the stage itself (the rest: getting there and back)


@dataclass(frozen=True)
class StageStats:
    """Aggregated timings of one stage over every measured call.

    Calls that ran under the call-tree sampler are counted in `sampled_calls` only:
    a profiler hook slows Python code, so they are kept out of every timing here.
    """

    pipeline: str
    stage: str
    kind: str
    calls: int
    total_s: float
    mean_s: float
    p95_s: float
    cpu_s: float
    host: str
    errors: int
    index: int = 0
    function: str = ""
    max_s: float = 0.0
    wait_s: float = 0.0
    gil_wait_s: float = 0.0
    # Runnable but waiting for a free core (the OS run queue); None: not measurable (its calls are
    # shorter than the thread-state sampler's ticks).
    cpu_queue_s: float | None = 0.0
    sampled_calls: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rss_peak_bytes: int = 0
    retries: int = 0  # offloaded: re-sent after a link failure, B had not started it
    fallbacks: int = 0  # offloaded: run here after a link failure
    retries_after_start: int = 0  # offloaded, idempotent: re-sent although B had (maybe) started it
    timeouts: int = 0  # offloaded: calls past their timeout
    link_losses: int = 0  # offloaded: worker or link lost, link silent, bad frame, no connection
    # Calls back to objects that stay on host A (db_connectors' storages): how many, the
    # wall and CPU seconds they took on A, and the bytes that crossed (or would cross).
    callbacks: int = 0
    callback_s: float = 0.0
    callback_cpu_s: float = 0.0
    callback_bytes: int = 0
    callback_pickle_s: float = 0.0  # pickling those bytes here (measured on a few calls, extrapolated)
    callback_unpickle_s: float = 0.0  # unpickling them (here; on the host, at its speed)
    last_error: ErrorInfo | None = None
    # Thread-state samples while the stage ran: {"running", "lock_wait", "io_wait"} -> count.
    state_samples: dict[str, int] = field(default_factory=dict)
    # CPU other threads used while the stage ran (GIL competition in threads mode).
    competitors: list[Competitor] = field(default_factory=list)
    flow: int = 1  # which `launch_flow` call of the script (see Profile.flows)
    # Offloaded to a cluster: the calls each worker ran, most seconds first (empty otherwise).
    workers: list[WorkerShare] = field(default_factory=list)
    # How long a thread of its process waited for the GIL and a core each time it woke while
    # this stage was NOT running (profiling/wakeprobe.py; 0 samples: not measured): what the
    # replies of its calls would wait here once it runs elsewhere.
    wake_s: float = 0.0
    wake_samples: int = 0
    # Its process's mean CPU seconds per iteration of `speedloop.reference_loop` over the reference
    # rounds timed while it ran (profiling/wakeprobe.py; 0 rounds: not measured): this machine's
    # speed as the stage saw it, which the planner sets against a host's time for the same loop.
    ref_iteration_cpu_s: float = 0.0
    ref_rounds: int = 0

    @property
    def name(self) -> str:
        return f"{self.pipeline}.{self.stage}"

    @property
    def cpu_ratio(self) -> float:
        """CPU time of the calling thread over wall time: near 1 means CPU-bound."""
        return self.cpu_s / self.total_s if self.total_s > 0 else 0.0


@dataclass(frozen=True)
class PipelineStats:
    """One pipeline: its cycle (one pass over its chain of stages)."""

    name: str
    wall_s: float  # mean cycle time
    runs: int  # completed cycles
    share: float  # this pipeline's busy time over all pipelines' busy time
    total_s: float = 0.0
    max_s: float = 0.0
    cpu_s: float = 0.0
    framework_cpu_s: float = 0.0  # CPU of the pipeline's threads outside any stage
    errors: int = 0
    flow: int = 1  # which `launch_flow` call of the script (see Profile.flows)
    utilisation: float = 0.0  # busy time (its cycles) over the run's wall time
    # How long a thread of its process waited for the GIL and a core each time it woke
    # (profiling/wakeprobe.py: the mean over `wake_samples` wake-ups; 0 samples: not measured).
    wake_s: float = 0.0
    wake_samples: int = 0


@dataclass(frozen=True)
class TimelineSpan:
    """One stage call in the bounded window of recent calls kept for the timeline."""

    pipeline: str
    stage: str
    host: str
    start_s: float  # since the flow started
    wall_s: float
    cpu_s: float
    error: bool = False
    sampled: bool = False
    worker: str = ""  # the worker of `host` that ran the call, when the host says (a Dask cluster)


@dataclass(frozen=True)
class ThreadCpu:
    """CPU used by one thread of the flow, split into stage work and the rest."""

    thread: str
    pipeline: str
    role: str  # "pipeline", "mqtt-network", "main", "other"
    cpu_s: float
    stage_cpu_s: float = 0.0

    @property
    def framework_cpu_s(self) -> float:
        return max(0.0, self.cpu_s - self.stage_cpu_s)


@dataclass(frozen=True)
class Bottleneck:
    """The slowest pipeline, its heaviest stage, and why."""

    pipeline: str
    stage: str
    reason: str
    bound: str = "cpu"  # "cpu" | "gil" | "wait" | "remote" | "idle" (limited by its schedule)
    share_of_cycle: float = 0.0
    cpu_ratio: float = 0.0
    gil_wait_ratio: float = 0.0
    competitors: list[Competitor] = field(default_factory=list)
    # "PIPELINE.STAGE" of the candidates when no single one stands out of the noise (else empty)
    candidates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CallTree:
    """Call stacks of a stage, sampled by pyinstrument on a few calls only."""

    pipeline: str
    stage: str
    sampled_calls: list[int]  # 1-based ordinals of the stage's calls that were sampled
    duration_s: float
    text: str  # pyinstrument's console rendering, no colour
    session: dict[str, Any] | None = None  # pyinstrument Session.to_json()

    @property
    def name(self) -> str:
        return f"{self.pipeline}.{self.stage}"


@dataclass(frozen=True)
class OffloadEvent:
    """A retry, local fallback, timeout or link loss of an offloaded stage, when it happened."""

    start_s: float  # since the flow started
    pipeline: str
    stage: str
    host: str
    what: str  # "retries" | "retries_after_start" | "fallbacks" | "timeouts" | "link_losses"


@dataclass(frozen=True)
class FlowInfo:
    """One `launch_flow` call of the script (a script may run several flows, one after another)."""

    number: int  # 1, 2, ... in launch order
    pipelines: list[str]  # as named in this profile (a name an earlier flow used gets `#N`)
    mode: str  # "threads" | "processes"
    start_s: float  # since the run started
    wall_s: float
    pid: int = 0  # the process that called launch_flow (a pool worker, say)
    ended: bool = True  # False: still running when the run ended


@dataclass(frozen=True)
class Profile:
    """Everything one run of a flow measured."""

    flow: str
    wall_s: float
    pipelines: list[PipelineStats]
    stages: list[StageStats]
    bottleneck: Bottleneck | None = None
    schema: str = SCHEMA
    mode: str = "threads"  # "threads" | "processes" | "plain"
    host: str = "local"
    started_at: str = ""
    argv: list[str] = field(default_factory=list)
    status: str = "ok"  # "ok" | "failed" | "stopped"
    error: ErrorInfo | None = None
    notes: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    timeline: list[TimelineSpan] = field(default_factory=list)
    timeline_dropped: int = 0
    threads: list[ThreadCpu] = field(default_factory=list)
    call_trees: list[CallTree] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    memory_bytes: int = 0  # memory the flow could use on its host (the machine's or its cgroup's)
    offload_events: list[OffloadEvent] = field(default_factory=list)  # the last 1000
    flows: list[FlowInfo] = field(default_factory=list)
    stopped_by: str = ""  # "SIGINT" | "SIGTERM" when a signal stopped the run (status "stopped")
    # Figures this profile lacks and why, e.g. {"thread states": "the sampler process died"}.
    missing: dict[str, str] = field(default_factory=dict)
    # Seconds of `wall_s` before the flow started its pipelines (its first launch_flow or stage,
    # in any process): `--duration` counts from there. None: it never started (or an old profile).
    startup_s: float | None = None

    @property
    def running_s(self) -> float:
        """The run's wall time after the flow started its pipelines (its start-up taken off)."""
        return self.wall_s - min(self.startup_s or 0.0, self.wall_s)

    def stage(self, name: str) -> StageStats:
        """The stage called `PIPELINE.STAGE` (KeyError when absent)."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def pipeline(self, name: str) -> PipelineStats:
        for p in self.pipelines:
            if p.name == name:
                return p
        raise KeyError(name)

    def call_tree(self, name: str) -> CallTree | None:
        return next((t for t in self.call_trees if t.name == name), None)

    def with_bottleneck(self, bottleneck: Bottleneck | None) -> Profile:
        return replace(self, bottleneck=bottleneck)

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Keep the contract's keys first so the JSON reads in the documented order.
        head = {k: d.pop(k) for k in ("schema", "flow", "wall_s", "pipelines", "stages", "bottleneck")}
        return {**head, **d}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, so an interrupted save never leaves half a profile."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        if not isinstance(d, dict):
            raise ValueError("top level is not a JSON object")
        schema = d.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"schema is {schema!r}, expected {SCHEMA!r}")
        return cls(
            schema=SCHEMA,
            flow=str(d["flow"]),
            wall_s=float(d["wall_s"]),
            pipelines=[PipelineStats(**p) for p in d["pipelines"]],
            stages=[_stage_from_dict(s) for s in d["stages"]],
            bottleneck=_bottleneck_from_dict(d.get("bottleneck")),
            mode=d.get("mode", "threads"),
            host=d.get("host", "local"),
            started_at=d.get("started_at", ""),
            argv=list(d.get("argv", [])),
            status=d.get("status", "ok"),
            error=ErrorInfo(**d["error"]) if d.get("error") else None,
            notes=list(d.get("notes", [])),
            limits=dict(d.get("limits", {})),
            timeline=[TimelineSpan(**t) for t in d.get("timeline", [])],
            timeline_dropped=int(d.get("timeline_dropped", 0)),
            threads=[ThreadCpu(**t) for t in d.get("threads", [])],
            call_trees=[CallTree(**c) for c in d.get("call_trees", [])],
            environment=dict(d.get("environment", {})),
            memory_bytes=int(d.get("memory_bytes", 0)),
            offload_events=[OffloadEvent(**e) for e in d.get("offload_events", [])],
            flows=[FlowInfo(**f) for f in d.get("flows", [])],
            stopped_by=str(d.get("stopped_by", "")),
            missing=dict(d.get("missing", {})),
            startup_s=None if d.get("startup_s") is None else float(d["startup_s"]),
        )


def _stage_from_dict(d: dict[str, Any]) -> StageStats:
    err = d.get("last_error")
    comps = [Competitor(**c) for c in d.get("competitors", [])]
    workers = [WorkerShare(**w) for w in d.get("workers", [])]
    return StageStats(**{**d, "last_error": ErrorInfo(**err) if err else None, "competitors": comps,
                         "workers": workers})


def _bottleneck_from_dict(d: dict[str, Any] | None) -> Bottleneck | None:
    if not d:
        return None
    return Bottleneck(**{**d, "competitors": [Competitor(**c) for c in d.get("competitors", [])]})


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Load a saved profile; a missing, corrupt or foreign file is a `ProfileFileError`."""
    p = Path(path)
    if not p.is_file():
        raise ProfileFileError(f"{p}: no such profile file (save one with `wiredprof analyze FLOW.py -o {p}`)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileFileError(f"{p}: not a wiredprof profile (corrupt JSON: {exc})") from None
    try:
        return Profile.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ProfileFileError(f"{p}: not a wiredprof profile ({what})") from None
