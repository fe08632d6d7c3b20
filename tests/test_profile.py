"""The profile data object: JSON round trip and refusal of foreign files."""
from __future__ import annotations

import json

import pytest

from wiredprof.errors import ProfileFileError
from wiredprof.profile import (
    Bottleneck, CallTree, Competitor, ErrorInfo, PipelineStats, Profile, StageStats, TimelineSpan, load_profile,
)


def sample_profile() -> Profile:
    core = StageStats("pipeline_3", "core_logic", "core_logic", 4, 24.0, 6.0, 6.3, 23.5, "local", 1,
                      last_error=ErrorInfo("ValueError", "bad", "Traceback ..."),
                      competitors=[Competitor("pipeline_2 thread outside stages", 3.0, True)])
    send = StageStats("pipeline_3", "send", "send", 4, 0.4, 0.1, 0.1, 0.001, "B", 0, index=1)
    return Profile(
        flow="flow.py", wall_s=30.0,
        pipelines=[PipelineStats("pipeline_3", 6.3, 4, 1.0)],
        stages=[core, send],
        bottleneck=Bottleneck("pipeline_3", "core_logic", "because", competitors=[Competitor("x", 1.0)]),
        timeline=[TimelineSpan("pipeline_3", "core_logic", "local", 0.0, 6.0, 5.9)],
        call_trees=[CallTree("pipeline_3", "core_logic", [2], 6.0, "tree", None)],
        notes=["a note"],
    )


def test_round_trip(tmp_path):
    p = sample_profile()
    path = tmp_path / "p.json"
    p.save(path)
    assert load_profile(path) == p
    assert list(json.loads(path.read_text()))[:6] == ["schema", "flow", "wall_s", "pipelines", "stages", "bottleneck"]


def test_derived_values():
    p = sample_profile()
    core = p.stage("pipeline_3.core_logic")
    assert core.name == "pipeline_3.core_logic"
    assert core.cpu_ratio == pytest.approx(23.5 / 24.0)
    assert p.call_tree("pipeline_3.core_logic").sampled_calls == [2]
    with pytest.raises(KeyError):
        p.stage("pipeline_9.core_logic")


def test_foreign_schema_is_refused(tmp_path):
    path = tmp_path / "p.json"
    d = sample_profile().to_dict()
    d["schema"] = "wiredprof.profile/99"
    path.write_text(json.dumps(d))
    with pytest.raises(ProfileFileError, match="expected 'wiredprof.profile/1'"):
        load_profile(path)
