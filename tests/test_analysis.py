"""Bottleneck decisions on hand-made profiles (pure arithmetic, no clock)."""
from __future__ import annotations

from wiredprof.analysis import classify, find_bottleneck
from tests.profiles import reference
from wiredprof.profile import Competitor, PipelineStats, Profile, StageStats


def test_cpu_bound_core_logic_of_the_slowest_pipeline():
    b = find_bottleneck(reference())
    assert (b.pipeline, b.stage, b.bound) == ("pipeline_3", "core_logic", "cpu")
    assert b.share_of_cycle == 6.0 / 6.3
    assert "pipeline_3.core_logic: 95% of the slowest pipeline's cycle" in b.reason
    assert "CPU-bound (cpu/wall 0.97)" in b.reason


def test_gil_bound_names_who_holds_the_gil():
    comp = [Competitor("pipeline_2 MQTT network thread outside stages", 7.5, True), Competitor("pipeline_1.storage", 0.1)]
    b = find_bottleneck(reference(core_cpu_ratio=0.45, core_gil=0.5, competitors=comp))
    assert b.bound == "gil"
    assert "waits 50% of its time for the GIL" in b.reason
    assert "pipeline_2 MQTT network thread outside stages 7.50 s CPU, framework" in b.reason


def test_a_stage_that_only_waits_is_wait_bound():
    p = reference(core_cpu_ratio=0.03)
    b = find_bottleneck(p)
    assert b.bound == "wait"
    assert "a faster CPU will not help" in b.reason
    assert classify(p.stage("pipeline_1.storage")).bound == "wait"


def test_no_calls_no_bottleneck():
    p = Profile(flow="f.py", wall_s=1, pipelines=[PipelineStats("p", 0, 0, 0)],
                stages=[StageStats("p", "s", "s", 0, 0, 0, 0, 0, "local", 0)])
    assert find_bottleneck(p) is None
