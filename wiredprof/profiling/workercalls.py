"""Which worker of a host ran each call of an offloaded stage (a Dask cluster has several).

The executor says where a call ran (`DaskExecutor` sets `worker` on the call's future);
`OffloadRuntime` notes it here with the call's start and wall time as seen on A. A child
process of the flow sends the note to the run's recorder like its other records. When the
profile is built, each stage gets its calls and seconds per worker (`StageStats.workers`),
and each timeline span of an offloaded call the worker that ran it (`TimelineSpan.worker`),
matched by stage and time: the note's start falls inside the span that wraps the call.

Kept beside the recorder (one table per recorder), so the per-call path of stages that
run here is untouched.
"""
from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import replace
from typing import Any, NamedTuple, cast

from wiredprof.profile import StageStats, TimelineSpan, WorkerShare
from wiredprof.profiling.recorder import Recorder

__all__ = ["WorkerCallRecord", "WorkerCalls", "install", "note_call", "calls_of", "with_workers"]

_RECENT = 4096  # notes kept for the timeline (the recorder keeps a bounded window of spans too)
_SLACK_S = 0.005  # a note starts this much before its span at most (clock steps)


class WorkerCallRecord(NamedTuple):
    """One offloaded call: its stage, the worker that ran it, start (the recorder's clock), wall here,
    and the seconds the worker itself measured running it."""

    pipeline: str
    stage: str
    worker: str
    start: float
    wall: float
    remote: float


class WorkerCalls:
    """Per stage and worker: calls and seconds; and the recent notes, for the timeline."""

    def __init__(self) -> None:
        # (pipeline, stage) -> worker -> [calls, seconds here, seconds on the worker]
        self.totals: dict[tuple[str, str], dict[str, list[float]]] = {}
        self.recent: deque[WorkerCallRecord] = deque(maxlen=_RECENT)
        self._lock = threading.Lock()

    def add(self, r: WorkerCallRecord) -> None:
        with self._lock:
            per = self.totals.setdefault((r.pipeline, r.stage), {}).setdefault(r.worker, [0.0, 0.0, 0.0])
            per[0] += 1
            per[1] += r.wall
            per[2] += r.remote
            self.recent.append(r)


_tables: weakref.WeakKeyDictionary[Recorder, WorkerCalls] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def calls_of(rec: Recorder) -> WorkerCalls:
    """The table of `rec`'s run (created on first use)."""
    with _tables_lock:
        table = _tables.get(rec)
        if table is None:
            table = _tables[rec] = WorkerCalls()
        return table


def install(rec: Recorder) -> None:
    """Fold the notes child processes send into `rec`'s table."""
    table = calls_of(rec)
    rec.extra_handlers[WorkerCallRecord] = table.add


def note_call(rec: Recorder, stage: str, worker: str, start: float, wall: float, remote: float) -> None:
    """`PIPELINE.STAGE` ran on `worker` from `start` (rec.clock()) for `wall` seconds, `remote` of them there."""
    pipeline, _, name = stage.partition(".")
    record = WorkerCallRecord(pipeline, name, worker, start, wall, remote)
    if rec.in_child:
        rec.link.send(cast(Any, record))
    else:
        calls_of(rec).add(record)


def with_workers(
    rec: Recorder, stages: list[StageStats], timeline: list[TimelineSpan]
) -> tuple[list[StageStats], list[TimelineSpan]]:
    """`stages` with their calls per worker, `timeline` with the worker of each offloaded call."""
    table = _tables.get(rec)
    if table is None or not table.totals:
        return stages, timeline
    with table._lock:
        totals = {k: dict(v) for k, v in table.totals.items()}
        notes = sorted(table.recent, key=lambda r: r.start)
    out_stages = []
    for s in stages:
        per = totals.get((s.pipeline, s.stage))
        if per:
            ranked = sorted(per.items(), key=lambda kv: -kv[1][1])
            shares = [WorkerShare(w, int(n), round(t, 6), round(r, 6)) for w, (n, t, r) in ranked]
            s = replace(s, workers=shares)
        out_stages.append(s)
    by_stage: dict[tuple[str, str], list[WorkerCallRecord]] = {}
    for r in notes:
        by_stage.setdefault((r.pipeline, r.stage), []).append(r)
    out_spans = []
    for span in timeline:
        mine = by_stage.get((span.pipeline, span.stage))
        if mine:
            start = span.start_s + rec.t0
            hit = next((r for r in mine if start - _SLACK_S <= r.start <= start + span.wall_s + _SLACK_S), None)
            if hit is not None:
                mine.remove(hit)  # one note, one span
                span = replace(span, worker=hit.worker)
        out_spans.append(span)
    return out_stages, out_spans
