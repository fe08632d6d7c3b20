"""Hand-made profiles for tests of the decide step (analysis, planner): pure data, no clock."""
from __future__ import annotations

from wiredprof.profile import PipelineStats, Profile, StageStats

__all__ = ["st", "reference"]


def st(pipeline, stage, mean, cpu_ratio, calls=4, gil_ratio=0.0, competitors=(), **extra):
    total = mean * calls
    return StageStats(pipeline, stage, stage, calls, total, mean, mean, total * cpu_ratio, "local", 0,
                      wait_s=total * (1 - cpu_ratio), gil_wait_s=total * gil_ratio, competitors=list(competitors),
                      **extra)


def reference(core_cpu_ratio=0.97, core_gil=0.0, competitors=(), mode="threads", **core_extra):
    stages = [
        st("pipeline_1", "http_connector", 0.5, 0.01), st("pipeline_1", "storage", 1.5, 0.02),
        st("pipeline_2", "mqtt_connector", 0.1, 0.05), st("pipeline_2", "storage", 0.5, 0.02),
        st("pipeline_3", "core_logic", 6.0, core_cpu_ratio, gil_ratio=core_gil, competitors=competitors, **core_extra),
        st("pipeline_3", "send", 0.1, 0.01), st("pipeline_3", "storage", 0.1, 0.01), st("pipeline_3", "send_2", 0.1, 0.01),
    ]
    pipes = [PipelineStats("pipeline_1", 2.0, 4, 0.2), PipelineStats("pipeline_2", 0.6, 4, 0.1),
             PipelineStats("pipeline_3", 6.3, 4, 0.7)]
    return Profile(flow="f.py", wall_s=30, pipelines=pipes, stages=stages, mode=mode)
