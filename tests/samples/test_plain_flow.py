"""samples/plain_flow.py: the reference shape without wiredflow, marked with wiredprof's API."""
from __future__ import annotations

from pathlib import Path

import pytest

from samples._workload import checksum_work, stable_seed
from samples.plain_flow import SUMMARY_PREFIX
from tests.samples._run import run_sample, summary_of

pytestmark = pytest.mark.slow
BLOCKS = 30


def test_all_stages_of_all_pipelines_run(tmp_path: Path) -> None:
    proc = run_sample("plain_flow.py", "--scale", "0.01", "--seconds", "3", "--core-blocks", str(BLOCKS),
                      "--workdir", str(tmp_path), timeout=40)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(proc.stdout, SUMMARY_PREFIX)
    stages = ["pipeline_1.http_connector", "pipeline_1.storage",
              "pipeline_2.mqtt_connector", "pipeline_2.storage",
              "pipeline_3.core_logic", "pipeline_3.send", "pipeline_3.storage", "pipeline_3.send_2"]
    assert sorted(summary["calls"]) == sorted(stages)
    assert all(summary["calls"][s] >= 1 for s in stages), summary["calls"]
    assert summary["http_requests"] == summary["calls"]["pipeline_1.http_connector"]
    outputs = summary["core_outputs"]
    assert len(outputs) == summary["calls"]["pipeline_3.storage"]
    assert {o["checksum"] for o in outputs} == {checksum_work(stable_seed(None), BLOCKS)}
    assert all(isinstance(o["upstream_records"], int) for o in outputs)
    assert (tmp_path / "pipeline_2.storage.jsonl").read_text().count('"sequence"') == summary["calls"][
        "pipeline_2.storage"]


def test_missing_mosquitto_says_what_to_install() -> None:
    proc = run_sample("plain_flow.py", "--seconds", "2", timeout=20,
                      WIREDPROF_MOSQUITTO="/nonexistent/mosquitto")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "apt-get install mosquitto" in proc.stderr


def test_core_logic_is_marked_as_a_decorated_stage() -> None:
    from samples.plain_flow import core_logic

    marker = getattr(core_logic, "__wiredprof_stage__", None)
    assert marker is not None, "core_logic must be decorated with wiredprof.stage (offload swaps it)"
    assert (marker.name, marker.kind) == ("core_logic", "core_logic")
    # Outside a profiler run the decorated function just runs.
    out = core_logic({"x": 1}, None, 2)
    assert out["checksum"] == checksum_work(stable_seed({"x": 1}), 2)
    assert out["upstream_records"] is None
