"""Finding a flow's stages without running them."""
from __future__ import annotations

import pytest

from wiredprof.discovery import discover_stages
from wiredprof.errors import FlowFileError


def test_wiredflow_stages_are_named_without_running_them(flows, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("WIREDFLOW_SMALL_MARKER", str(marker))
    names = discover_stages(flows / "wiredflow_small.py")
    assert [n.full for n in names] == [
        "pipeline_1.http_connector", "pipeline_1.storage",
        "pipeline_3.core_logic", "pipeline_3.send", "pipeline_3.storage", "pipeline_3.send_2",
    ]
    assert names[2].function == "core_logic"
    assert not marker.exists()


def test_plain_flows_have_no_static_stages(flows):
    assert discover_stages(flows / "plain_small.py") == []


def test_flow_failing_before_launch(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import wiredflow\nraise RuntimeError('no config file')\n")
    with pytest.raises(FlowFileError, match="RuntimeError: no config file"):
        discover_stages(bad)


def test_a_plain_flow_that_only_names_wiredflow_is_not_run(tmp_path):
    import time

    from wiredprof.discovery import discover_stages

    flow = tmp_path / "plain.py"
    flow.write_text('"""Like wiredflow, without it."""\nimport time\ntime.sleep(100)\n')
    t0 = time.monotonic()
    assert discover_stages(flow) == [] and time.monotonic() - t0 < 5


def test_every_flow_of_a_script_is_named_with_its_number():
    """wiredflow's storage demo launches four flows in a row, each with a pipeline "http_integers"
    (built inside a pool worker): discovery names all four, as `analyze` does (`NAME#N`)."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "storages_flow.py"
    names = discover_stages(sample, ["--seconds", "3"])  # each flow's mock API serves 3 s
    assert [(n.full, n.flow) for n in names] == [
        ("http_integers.http_connector", 1), ("http_integers.storage", 1),
        ("http_integers#2.http_connector", 2), ("http_integers#2.storage", 2),
        ("http_integers#3.http_connector", 3), ("http_integers#3.storage", 3),
        ("http_integers#4.http_connector", 4), ("http_integers#4.storage", 4),
    ]


def test_an_unknown_stage_is_listed_with_its_flow_when_there_are_several():
    from wiredprof.stages import StageName, UnknownStageError, resolve_stage

    stages = [StageName("p", "core_logic", flow=1), StageName("p#2", "storage", flow=2)]
    with pytest.raises(UnknownStageError, match=r"p\.core_logic \(flow #1\), p#2\.storage \(flow #2\)"):
        resolve_stage("nope", stages)
