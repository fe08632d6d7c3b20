"""The timeline as Chrome trace-event JSON, for Perfetto (ui.perfetto.dev) and chrome://tracing.

One process per host (the profiled host first), one thread per pipeline (the same
thread id on every host, so `pipeline_3` on B lines up with `pipeline_3` locally), one
complete event ("ph": "X") per stage call, with its CPU time, error and sampling in
`args`. Calls of one pipeline that overlap go to extra threads, because trace viewers
expect the events of a thread to nest.
Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
"""

from __future__ import annotations

from typing import Any

from wiredprof.profile import Profile
from wiredprof.reports.timeline import timeline_lanes

__all__ = ["TRACE_SCHEMA", "render_trace"]

TRACE_SCHEMA = "wiredprof.trace/1"
_OVERLAP_TID_BASE = 1000


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def render_trace(profile: Profile) -> dict[str, Any]:
    """`{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}`; dump it with `json.dumps`."""
    lanes = timeline_lanes(profile)
    hosts = list(dict.fromkeys(lane.host for lane in lanes))
    pid_of = {host: i + 1 for i, host in enumerate(hosts)}
    pipelines = list(dict.fromkeys(lane.pipeline for lane in lanes))
    tid_of = {name: i + 1 for i, name in enumerate(pipelines)}
    errors = {(s.pipeline, s.stage): s.last_error.one_line() for s in profile.stages if s.last_error}

    meta: list[dict[str, Any]] = []
    for host, pid in pid_of.items():
        remote = host != profile.host
        meta.append(
            {
                "name": "process_name",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"name": f"host {host}" + (" (offloaded stages)" if remote else "")},
            }
        )
        meta.append(
            {"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0, "args": {"sort_index": pid}}
        )

    events: list[dict[str, Any]] = []
    extra_tid = _OVERLAP_TID_BASE
    named: set[tuple[int, int]] = set()
    for lane in lanes:
        pid = pid_of[lane.host]
        row_tids = [tid_of[lane.pipeline]]
        for row in range(1, lane.rows):
            extra_tid += 1
            row_tids.append(extra_tid)
        for row, tid in enumerate(row_tids):
            if (pid, tid) in named:
                continue
            named.add((pid, tid))
            label = lane.pipeline if row == 0 else f"{lane.pipeline} (overlapping calls {row + 1})"
            meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}})
            meta.append(
                {
                    "name": "thread_sort_index",
                    "ph": "M",
                    "pid": pid,
                    "tid": tid,
                    "args": {"sort_index": tid_of[lane.pipeline] * 100 + row},
                }
            )
        for bar in lane.bars:
            s = bar.span
            args: dict[str, Any] = {
                "pipeline": s.pipeline,
                "stage": s.stage,
                "kind": bar.kind,
                "host": s.host,
                "wall_s": s.wall_s,
                "cpu_s": s.cpu_s,
                "cpu_ratio": round(s.cpu_s / s.wall_s, 4) if s.wall_s > 0 else 0.0,
                "error": s.error,
                "sampled": s.sampled,
            }
            if s.error and (s.pipeline, s.stage) in errors:
                args["last_error"] = errors[(s.pipeline, s.stage)]
            cat = ",".join([bar.kind] + (["error"] if s.error else []) + (["sampled"] if s.sampled else []))
            events.append(
                {
                    "name": s.stage,
                    "cat": cat,
                    "ph": "X",
                    "ts": _us(s.start_s),
                    "dur": _us(s.wall_s),
                    "pid": pid,
                    "tid": row_tids[bar.row],
                    "args": args,
                }
            )
    events.sort(key=lambda e: (e["ts"], e["pid"], e["tid"]))
    b = profile.bottleneck
    other = {
        "schema": TRACE_SCHEMA,
        "profile_schema": profile.schema,
        "flow": profile.flow,
        "wall_s": f"{profile.wall_s:g}",
        "mode": profile.mode,
        "status": profile.status,
        "bottleneck": f"{b.pipeline}.{b.stage}" if b else "",
        "timeline_dropped": str(profile.timeline_dropped),
    }
    return {"traceEvents": meta + events, "displayTimeUnit": "ms", "otherData": other}
