"""wiredprof.flowstages: which stages a flow has and which of them `offload` refuses, for the planner."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tests.profiles import reference, st
from wiredprof.flowstages import known_stages, stage_refusals


def test_a_plain_flow_is_never_run_to_list_its_stages(tmp_path: Path) -> None:
    flow = tmp_path / "plain.py"
    flow.write_text("# not a wiredflow flow, though it says wiredflow\nimport time\ntime.sleep(100)\n")
    profile = replace(reference(mode="plain"), flow=str(flow))
    t0 = time.monotonic()
    stages, source = known_stages(None, profile)
    assert time.monotonic() - t0 < 5 and source == f"the last profile of {flow}"
    assert {s.full for s in stages} == {s.name for s in profile.stages}
    assert stage_refusals(profile) == {}


def test_builtins_known_from_a_wiredflow_profile_when_the_flow_file_is_gone() -> None:
    prof = reference()
    stages = [s if s.name != "pipeline_1.storage" else replace(st("pipeline_1", "storage", 1.5, 0.02),
                                                               function="JSONStorageStage")
              for s in prof.stages]
    refused = stage_refusals(replace(prof, flow="gone.py", stages=stages))
    assert refused == {"pipeline_1.storage": "pipeline_1.storage is wiredflow's built-in JSONStorageStage; only "
                                             "stages built from your own callables can be offloaded"}


def test_a_wiredflow_file_is_asked(flows: Path) -> None:
    prof = replace(reference(), flow=str(flows / "wiredflow_small.py"), argv=[str(flows / "wiredflow_small.py")])
    stages, source = known_stages(None, prof)
    assert source == str(flows / "wiredflow_small.py") and any(s.stage == "core_logic" for s in stages)
