"""Stage names as users type them."""
from __future__ import annotations

import pytest

from wiredprof.stages import AmbiguousStageError, StageName, UnknownStageError, offload_refusal, resolve_stage

STAGES = [
    StageName("pipeline_1", "http_connector"), StageName("pipeline_1", "storage"),
    StageName("pipeline_2", "mqtt_connector"), StageName("pipeline_2", "storage"),
    StageName("pipeline_3", "core_logic", "make_model.<locals>.heavy_model"),
    StageName("pipeline_3", "send"), StageName("pipeline_3", "storage"), StageName("pipeline_3", "send_2"),
]


def test_full_and_unique_bare_names():
    assert resolve_stage("pipeline_2.storage", STAGES).full == "pipeline_2.storage"
    assert resolve_stage("core_logic", STAGES).full == "pipeline_3.core_logic"
    assert resolve_stage("send_2", STAGES).full == "pipeline_3.send_2"


def test_function_name_is_accepted():
    assert resolve_stage("heavy_model", STAGES).full == "pipeline_3.core_logic"
    assert resolve_stage("pipeline_3.heavy_model", STAGES).full == "pipeline_3.core_logic"


def test_ambiguous_bare_name_lists_the_candidates():
    with pytest.raises(AmbiguousStageError) as e:
        resolve_stage("storage", STAGES)
    assert "pipeline_1.storage, pipeline_2.storage, pipeline_3.storage" in str(e.value)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownStageError) as e:
        resolve_stage("core_logc", STAGES)
    assert "did you mean 'core_logic'" in str(e.value)
    with pytest.raises(UnknownStageError, match="no stage 'pipeline_9.send'"):
        resolve_stage("pipeline_9.send", STAGES)


def test_offload_refusal_is_one_line_for_builtins_and_unshippable_callables():
    assert offload_refusal(StageName("p", "core_logic", "heavy")) == ""
    builtin = offload_refusal(StageName("p", "storage", "JSONStorageStage", builtin=True))
    assert builtin == ("p.storage is wiredflow's built-in JSONStorageStage; only stages built from your own "
                       "callables can be offloaded")
    unshippable = offload_refusal(StageName("p", "send", "f", ship_error="a generator cannot be pickled"))
    assert unshippable == "p.send cannot be offloaded: a generator cannot be pickled"
