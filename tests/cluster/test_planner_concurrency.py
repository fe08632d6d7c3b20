"""The planner on a Dask cluster: calls of several pipelines side by side on its workers (slots)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.profiles import st
from wiredprof.cluster.probe import WorkerProbe, cluster_parallelism
from wiredprof.placement.capacity import HostCapacity
from wiredprof.placement.model import make_plan, predict, side_by_side
from wiredprof.profile import PipelineStats, Profile


def two_heavy_pipelines(busy_elsewhere: float) -> Profile:
    """pipeline_a's heavy stage already runs on the cluster, busy `busy_elsewhere` of the run;
    pipeline_b's heavy stage (CPU-bound) still runs here."""
    wall = 40.0
    there = st("pipeline_a", "heavy", busy_elsewhere * wall / 4, 0.05)
    there = replace(there, host="cluster")
    here = st("pipeline_b", "heavy", 4.0, 0.98)
    return Profile(flow="f.py", wall_s=wall, stages=[there, here],
                   pipelines=[PipelineStats("pipeline_a", 10.0, 4, 0.5), PipelineStats("pipeline_b", 4.0, 4, 0.5)])


def cluster(slots: int) -> HostCapacity:
    return HostCapacity("cluster", cpu_speed_ratio=2.0, cpu_time_ratio=2.0, cores=4, slots=slots, rtt_s=0.05)


def test_calls_already_on_the_cluster_count_as_side_by_side() -> None:
    profile = two_heavy_pipelines(0.75)
    moved = profile.stage("pipeline_b.heavy")
    assert side_by_side(profile, moved, cluster(2)) == pytest.approx((0.75, 1.0))  # a slot each: no change
    assert side_by_side(profile, moved, replace(cluster(1), name="other")) == (0.0, 1.0)
    # One slot: both calls share it, so pipeline_a's calls last longer too and it is busy more of
    # the time: c = 1 + c b / (c b + 1 - b), the fixed point, above the first guess 1 + b.
    beside, c = side_by_side(profile, moved, cluster(1))
    b = 0.75
    assert c == pytest.approx(1.0 + c * b / (c * b + 1.0 - b), rel=1e-6) and 1.75 < c < 2.0
    assert beside == pytest.approx(c - 1.0, rel=1e-6)


@pytest.mark.parametrize("slots", [1, 2])
def test_more_calls_than_worker_processes_share_them(slots: int) -> None:
    profile = two_heavy_pipelines(0.75)
    moved = profile.stage("pipeline_b.heavy")
    slowdown = side_by_side(profile, moved, cluster(slots))[1]
    assert (slowdown > 1.75) == (slots == 1) and (slowdown == 1.0) == (slots == 2)
    alone = predict(moved, cluster(slots), replace(profile, stages=[moved]))
    shared = predict(moved, cluster(slots), profile)
    assert shared.contention == pytest.approx(slowdown)
    assert shared.compute_s == pytest.approx(alone.compute_s * slowdown)
    rec = next(r for r in make_plan(profile, [cluster(slots)]).recommendations if r.stage == "pipeline_b.heavy")
    assert rec.predicted_s == pytest.approx(shared.seconds)
    assert ("run at once, on 1 slot(s)" in rec.reason) == (slots == 1)


def worker(address: str, hostname: str, threads: int, cores: int) -> WorkerProbe:
    return WorkerProbe(address, threads, 0, 2**33, 1.0, 1.0, "3.11.7", hostname, cores)


def test_slots_are_worker_processes_at_most_one_per_core() -> None:
    # one worker of 4 threads: one GIL, one call of pure Python at full speed
    assert cluster_parallelism([worker("a", "m1", 4, 8)]) == (4, 1)
    # three one-thread workers on a 2-core machine, two on another: 2 + 2 at once
    many = [worker(f"w{i}", "m1", 1, 2) for i in range(3)] + [worker(f"v{i}", "m2", 1, 4) for i in range(2)]
    assert cluster_parallelism(many) == (4, 4)
