"""The cost model and the ranking, on hand-made profiles (pure arithmetic)."""
from __future__ import annotations

import json

import pytest

from tests.profiles import reference, st
from wiredprof.planner import HostCapacity, make_plan, predict_move
from wiredprof.profile import Competitor

B = HostCapacity("B", cpu_speed_ratio=4.0, memory_bytes=64 * 2**30, rtt_s=0.001, bandwidth_bytes_per_s=100e6)


def test_reference_case_core_logic_to_b():
    plan = make_plan(reference(core_cpu_ratio=1.0), [B])
    best = plan.best()
    assert (best.stage, best.host) == ("pipeline_3.core_logic", "B")
    # 6 s of CPU at 4x: 1.5 s, plus one round trip.
    assert best.predicted_s == pytest.approx(1.5 + 0.001)
    assert best.gain_s == pytest.approx(6.0 - 1.501)
    assert best.predicted_pipeline_cycle_s == pytest.approx(6.3 - best.gain_s)
    # pipeline_3 drops to 1.8 s: pipeline_1 (2.0 s) becomes the flow's slowest.
    assert best.flow_cycle_s == pytest.approx(6.3)
    assert best.predicted_flow_cycle_s == pytest.approx(2.0)
    assert best.recommended and "x4.00" in best.reason


def test_waiting_stages_are_explicitly_not_recommended():
    plan = make_plan(reference(), [B])
    storage = next(r for r in plan.recommendations if r.stage == "pipeline_1.storage")
    assert not storage.recommended
    assert "waits on I/O 98% of its time; a faster CPU will not help" in storage.reason
    assert [r.recommended for r in plan.recommendations].count(True) == 1
    assert plan.recommendations[0].recommended


def test_io_part_is_not_scaled_and_transfer_is_counted():
    s = st("p", "s", 1.0, 0.5, calls=2, bytes_in=100_000_000, bytes_out=100_000_000)
    # per call: cpu 0.5 / 4 + io 0.5 + 200 MB / 2 calls / 100 MB/s + rtt
    assert predict_move(s, B) == pytest.approx(0.125 + 0.5 + 1.0 + 0.001)


def test_a_slower_host_is_not_recommended():
    slow = HostCapacity("C", cpu_speed_ratio=0.5)
    plan = make_plan(reference(core_cpu_ratio=1.0), [slow])
    core = next(r for r in plan.recommendations if r.stage == "pipeline_3.core_logic")
    assert not core.recommended and "slower on C" in core.reason


def test_memory_that_does_not_fit_is_never_placed():
    small = HostCapacity("A2", cpu_speed_ratio=4.0, memory_bytes=4 * 2**30)
    plan = make_plan(reference(core_cpu_ratio=1.0, rss_peak_bytes=6 * 2**30), [small, B])
    core = [r for r in plan.recommendations if r.stage == "pipeline_3.core_logic"]
    by_host = {r.host: r for r in core}
    assert not by_host["A2"].recommended and "does not fit: needs 6.0 GiB, A2 has 4.0 GiB" in by_host["A2"].reason
    assert by_host["B"].recommended and "fits in 64.0 GiB" in by_host["B"].reason


def test_gil_freed_for_the_other_pipelines_in_threads_mode():
    prof = reference(core_cpu_ratio=1.0)
    # pipeline_1.storage waited 1.0 s for the GIL while core_logic computed.
    stages = [s if s.name != "pipeline_1.storage" else
              st("pipeline_1", "storage", 1.5, 0.02, gil_ratio=4.0 / 6.0,
                 competitors=[Competitor("pipeline_3.core_logic", 8.0)])
              for s in prof.stages]
    prof = type(prof)(**{**prof.__dict__, "stages": stages})
    best = make_plan(prof, [B]).best()
    assert best.stage == "pipeline_3.core_logic"
    # pipeline_1 gets its 1.0 s of GIL wait per cycle back: 2.0 -> 1.0 s; pipeline_3 is the slowest again.
    assert best.predicted_flow_cycle_s == pytest.approx(best.predicted_pipeline_cycle_s)
    # In processes mode there is no shared GIL to free: pipeline_1 stays at 2.0 s.
    processes = make_plan(type(prof)(**{**prof.__dict__, "mode": "processes"}), [B]).best()
    assert processes.predicted_flow_cycle_s == pytest.approx(2.0)


def test_plan_json_contract():
    d = json.loads(make_plan(reference(core_cpu_ratio=1.0), [B], "before.json").to_json())
    assert d["schema"] == "wiredprof.plan/1"
    first = d["recommendations"][0]
    assert {"stage", "host", "current_s", "predicted_s", "gain_s"} <= set(first)


def test_a_stage_that_does_not_fit_here_is_moved_where_it_fits():
    prof = reference(core_cpu_ratio=1.0, rss_peak_bytes=500 * 2**20)
    prof = type(prof)(**{**prof.__dict__, "memory_bytes": 300 * 2**20})
    same_speed = HostCapacity("B", cpu_speed_ratio=1.0, memory_bytes=64 * 2**30)
    best = make_plan(prof, [same_speed]).best()
    assert best.stage == "pipeline_3.core_logic" and best.recommended
    assert "does not fit here: needs 500 MiB of this host's 300 MiB; B has 64.0 GiB" in best.reason


def test_cpu_quota_throttled_stage_moves_its_cpu_seconds_not_its_queue():
    # A stage throttled by a CPU quota (a container's CPU limit, benchmarks/reference.py's host A):
    # 1.5 s of CPU per call, 4.5 s runnable but queued for the quota, 0.05 s of I/O.
    s = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5)
    # The probe in the same cgroup: the loop's wall time here is 4x B's, its CPU time 1x.
    host = HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=1.0, rtt_s=0.001)
    assert predict_move(s, host) == pytest.approx(1.5 + 0.05 + 0.001)
    # A host with 2x the CPU-time speed: CPU seconds halve, the queue still stays here.
    assert predict_move(s, HostCapacity("B2", cpu_speed_ratio=8.0, cpu_time_ratio=2.0)) == pytest.approx(0.75 + 0.05)


def test_without_a_cpu_time_ratio_queued_time_is_kept_as_waiting():
    # A probe saved by an older wiredprof (no CPU-time ratio): the old model, unchanged.
    s = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5)
    assert predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0, rtt_s=0.001)) == pytest.approx(
        1.5 / 4 + 4.5 + 0.05 + 0.001)


def test_a_really_slower_cpu_gives_the_same_prediction_either_way():
    # Real slower hardware: no queueing, the CPU-time ratio equals the wall-time ratio.
    s = st("p", "s", 6.0, 1.0, calls=2)
    a = predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=4.0))
    b = predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0))
    assert a == pytest.approx(b) == pytest.approx(1.5)
