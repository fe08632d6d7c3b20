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


def _idle_profile(threads=()):
    from tests.profiles import st

    stages = [st("http", "http_connector", 0.05, 0.02, calls=3), st("http", "storage", 0.02, 0.05, calls=3),
              st("mqtt", "mqtt_connector", 0.0002, 0.9, calls=40), st("mqtt", "storage", 0.001, 0.3, calls=40)]
    pipes = [PipelineStats("http", 0.07, 3, 0.8, utilisation=0.0105), PipelineStats("mqtt", 0.0012, 40, 0.2,
                                                                                    utilisation=0.0024)]
    return Profile(flow="f.py", wall_s=20, pipelines=pipes, stages=stages, mode="threads", threads=list(threads))


def test_an_idle_flow_is_limited_by_its_schedule_and_names_the_busy_loop():
    from wiredprof.profile import ThreadCpu

    spinning = ThreadCpu("Thread-2 (launch_pipeline)", "mqtt", "pipeline", cpu_s=18.0, stage_cpu_s=0.01)
    quiet = ThreadCpu("Thread-1 (launch_pipeline)", "http", "pipeline", cpu_s=0.2, stage_cpu_s=0.01)
    b = find_bottleneck(_idle_profile([spinning, quiet]))
    assert b.bound == "idle"
    assert b.reason.startswith("none: the flow is limited by its schedule, not by a stage")
    assert "the busiest, http, 1%" in b.reason
    assert "the cost to look at: mqtt thread outside stages (framework) burns 18 s CPU in 20 s (90% of a core)" \
        in b.reason
    assert "Thread-1" not in b.reason and "http thread" not in b.reason
    assert [c.name for c in b.competitors] == ["mqtt thread outside stages"]


def test_a_busy_pipeline_is_not_idle():
    p = reference()  # pipeline_3: 4 cycles of 6.3 s in 30 s
    assert find_bottleneck(p).bound != "idle"
    busy = Profile(flow="f.py", wall_s=30, pipelines=[PipelineStats(pl.name, pl.wall_s, pl.runs, pl.share,
                                                                    utilisation=0.51) for pl in p.pipelines],
                   stages=p.stages)
    assert find_bottleneck(busy).bound == "cpu"


def test_two_stages_within_noise_are_both_named():
    from tests.profiles import st

    stages = [st("p", "a", 1.00, 0.9, calls=50), st("p", "b", 0.95, 0.9, calls=50), st("p", "c", 0.1, 0.9)]
    prof = Profile(flow="f.py", wall_s=110, pipelines=[PipelineStats("p", 2.05, 50, 1.0, utilisation=0.93)],
                   stages=stages)
    b = find_bottleneck(prof)
    assert b.reason.startswith("no clear bottleneck: p.a or p.b")
    assert b.candidates == ["p.a", "p.b"]
    clear = Profile(flow="f.py", wall_s=110, pipelines=prof.pipelines,
                    stages=[st("p", "a", 1.0, 0.9, calls=50), st("p", "b", 0.5, 0.9, calls=50)])
    assert find_bottleneck(clear).candidates == []
    assert find_bottleneck(clear).reason.startswith("p.a: ")


def test_two_pipelines_taking_turns_on_one_gil_are_a_tie_whoever_waited_more():
    """The same CPU work behind unequal GIL waits (the split varies run to run) names both, not one."""
    from tests.profiles import st

    def flow(wait_a: float, wait_b: float) -> Profile:
        # 0.5 s of CPU a call each; a call's wall is its CPU plus its share of the other's GIL time.
        stages = [st("pipeline_a", "heavy", 0.5 + wait_a, 0.5 / (0.5 + wait_a), calls=5, gil_ratio=wait_a / (0.5 + wait_a)),
                  st("pipeline_b", "heavy", 0.5 + wait_b, 0.5 / (0.5 + wait_b), calls=5, gil_ratio=wait_b / (0.5 + wait_b))]
        pipes = [PipelineStats("pipeline_a", 0.6 + wait_a, 5, 0.5, utilisation=0.9),
                 PipelineStats("pipeline_b", 0.6 + wait_b, 5, 0.5, utilisation=0.9)]
        return Profile(flow="f.py", wall_s=6, pipelines=pipes, stages=stages, mode="threads")

    for wait_a, wait_b in ((0.8, 0.45), (0.45, 0.8)):
        b = find_bottleneck(flow(wait_a, wait_b))
        assert sorted(b.candidates) == ["pipeline_a.heavy", "pipeline_b.heavy"], b.reason
        assert "without their GIL waits (they take turns on one GIL)" in b.reason
    # Unequal work is still a verdict, however the waits fell.
    stages = [st("pipeline_a", "heavy", 1.3, 1.0 / 1.3, calls=5, gil_ratio=0.3 / 1.3),
              st("pipeline_b", "heavy", 0.8, 0.3 / 0.8, calls=5, gil_ratio=0.5 / 0.8)]
    pipes = [PipelineStats("pipeline_a", 1.4, 5, 0.5, utilisation=0.9),
             PipelineStats("pipeline_b", 0.9, 5, 0.5, utilisation=0.9)]
    b = find_bottleneck(Profile(flow="f.py", wall_s=8, pipelines=pipes, stages=stages, mode="threads"))
    assert b.candidates == [] and b.stage == "heavy" and b.pipeline == "pipeline_a"
