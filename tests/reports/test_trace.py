"""Chrome trace-event JSON: the structure Perfetto and chrome://tracing read."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace

import pytest

from wiredprof.profile import TimelineSpan
from wiredprof.reports.trace import TRACE_SCHEMA, render_trace


def validate(trace: dict) -> None:
    """Fail on anything a trace viewer would reject or draw wrong."""
    assert set(trace) >= {"traceEvents"}
    assert json.loads(json.dumps(trace)) == trace  # plain JSON, no NaN
    names: dict[tuple[int, int], str] = {}
    for ev in trace["traceEvents"]:
        assert ev["ph"] in ("X", "M"), ev
        assert isinstance(ev["pid"], int) and isinstance(ev["tid"], int), ev
        assert isinstance(ev["name"], str) and ev["name"], ev
        if ev["ph"] == "M":
            assert ev["name"] in ("process_name", "process_sort_index", "thread_name", "thread_sort_index")
            assert isinstance(ev["args"], dict)
            if ev["name"] == "thread_name":
                names[(ev["pid"], ev["tid"])] = ev["args"]["name"]
        else:
            assert isinstance(ev["ts"], (int, float)) and ev["ts"] >= 0
            assert isinstance(ev["dur"], (int, float)) and ev["dur"] >= 0
    by_thread = defaultdict(list)
    for ev in trace["traceEvents"]:
        if ev["ph"] == "X":
            assert (ev["pid"], ev["tid"]) in names, f"thread of {ev} has no name"
            by_thread[(ev["pid"], ev["tid"])].append(ev)
    for evs in by_thread.values():  # complete events of one thread must not partly overlap
        evs.sort(key=lambda e: e["ts"])
        for a, b in zip(evs, evs[1:]):
            assert b["ts"] >= a["ts"] + a["dur"] - 1e-3, (a, b)


def test_one_complete_event_per_call_in_microseconds(profile):
    trace = render_trace(profile)
    validate(trace)
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == len(profile.timeline)
    spans = {(s.pipeline, s.stage, round(s.start_s * 1e6, 3)): s for s in profile.timeline}
    for ev in xs:
        s = spans[(ev["args"]["pipeline"], ev["name"], ev["ts"])]
        assert ev["dur"] == pytest.approx(s.wall_s * 1e6)
        assert (
            ev["args"]["cpu_s"] == s.cpu_s and ev["args"]["error"] is s.error and ev["args"]["host"] == s.host
        )
    assert trace["otherData"]["schema"] == TRACE_SCHEMA


def test_a_process_per_host_and_a_thread_per_pipeline(profile):
    trace = render_trace(profile)
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    assert procs == {1: "host local", 2: "host B (offloaded stages)"}
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in xs if e["args"]["host"] == "B"} == {2}
    assert {e["pid"] for e in xs if e["args"]["host"] == "local"} == {1}
    # pipeline_3 has the same thread id on both hosts, so the two lines sit together.
    tids = {(e["pid"], e["args"]["pipeline"]): e["tid"] for e in xs}
    assert tids[(1, "pipeline_3")] == tids[(2, "pipeline_3")] == 3
    assert tids[(1, "pipeline_1")] == 1
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert threads[(2, 3)] == "pipeline_3"


def test_errors_and_sampled_calls_are_marked(profile):
    xs = [e for e in render_trace(profile)["traceEvents"] if e["ph"] == "X"]
    (err,) = [e for e in xs if e["args"]["error"]]
    assert err["cat"] == "storage,error" and err["args"]["last_error"].startswith("OSError: disk")
    (sampled,) = [e for e in xs if e["args"]["sampled"]]
    assert sampled["name"] == "core_logic" and "sampled" in sampled["cat"].split(",")


def test_overlapping_calls_of_one_pipeline_go_to_their_own_thread(profile):
    extra = TimelineSpan("pipeline_2", "storage", "local", 0.3, 2.0, 0.1)
    trace = render_trace(replace(profile, timeline=[*profile.timeline, extra]))
    validate(trace)
    names = [e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"]
    assert "pipeline_2 (overlapping calls 2)" in names


def test_an_empty_timeline_is_still_a_valid_trace(profile):
    trace = render_trace(replace(profile, timeline=[]))
    validate(trace)
    assert not [e for e in trace["traceEvents"] if e["ph"] == "X"]
