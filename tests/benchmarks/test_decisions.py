"""benchmarks/decisions.py: the sample catalogue, the report, and one small real run.

Never asserts a time or an error size (the machine is shared and noisy): only that every
step ran and the figures and the report have their structure.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import decisions
from samples import catalog
from tests.benchmarks._run import REPO, result_of, run_benchmark


def test_every_sample_flow_is_picked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f.file for f in catalog.sample_flows()]
    on_disk = sorted(p.name for p in (REPO / "samples").glob("*_flow.py"))
    assert set(on_disk) <= set(names) and "callback_flow.py" in names
    (tmp_path / "new_flow.py").write_text("")
    monkeypatch.setattr(catalog, "SAMPLES_DIR", tmp_path)
    extra = [f for f in catalog.sample_flows() if not f.catalogued]
    assert [(f.name, f.file, f.args) for f in extra] == [("new_flow", "new_flow.py", ())]


def run_record(k: int, error: float, recommended: bool, verdict: str = "p.core_logic (cpu)") -> dict:
    rec = {"stage": "p.core_logic", "host": "B", "current_s": 1.0, "predicted_s": 0.5, "predicted_low_s": 0.45,
           "predicted_high_s": 0.55, "recommended": recommended, "offloadable": True, "reason": "because"}
    return {"run": k, "flow": "f", "errors": [], "status_before": "ok", "status_after": "ok",
            "verdict_before": verdict, "stage": "p.core_logic", "stage_choice": "the catalogue's",
            "recommendation": rec, "measured_s": 0.5 / (1 + error / 100), "error_pct": error,
            "hit": abs(error) < 10, "held": True, "builtin_recommended": [],
            "host": {"cpu_speed_ratio": 1.0, "ratio_spread": 0.02, "busy_cores": 0.5, "cores": 2,
                     "same_machine": True}}


def test_targets_and_report() -> None:
    ref = catalog.SampleFlow("ref", "r.py", reference=True)
    cb = catalog.SampleFlow("cb", "c.py", callback_dominated=True)
    good = [run_record(1, 4.0, True), run_record(2, -8.0, True)]
    assert decisions.flow_targets(ref, good) == {"profiled_ok": True, "same_verdict": True,
                                                 "no_builtin_recommended": True, "prediction_met": True}
    bad = [run_record(1, 4.0, True), run_record(2, 12.0, True, verdict="p.other (wait)")]
    t = decisions.flow_targets(ref, bad)
    assert t["same_verdict"] is False and t["prediction_met"] is False
    # A call-back-dominated stage: 30 %, or the planner said no.
    assert decisions.flow_targets(cb, [run_record(1, 25.0, True), run_record(2, 80.0, False)])["prediction_met"]
    assert not decisions.flow_targets(cb, [run_record(1, 45.0, True), run_record(2, 5.0, True)])["prediction_met"]

    result = {"argv": ["--repeat", "2"], "started_at": "2026-12-01T00:00:00+00:00", "elapsed_s": 60.0,
              "loadavg_end": [1.0], "machine": {"cpus": 2, "loadavg_start": [0.5]},
              "flows": [{"flow": "ref", "catalogued": True, "reference": True, "callback_dominated": False,
                         "runs": good, "targets": decisions.flow_targets(ref, good)}],
              "simulated": {"skipped": "no root"}}
    text = re.sub(r" {2,}", " ", decisions.render_report(result))  # the tables' cells without their padding
    assert "| ref | 1 | p.core_logic (cpu) | p.core_logic | yes | 1.00 s | 500.0 ms (450.0 ms-550.0 ms) " in text
    assert "| +4.0 % | yes | yes |" in text
    assert "| ref | met | met | met | within ±10 %: met |" in text
    assert "Not measured: no root." in text


def test_bad_arguments_exit_2() -> None:
    proc = run_benchmark("decisions", "--only", "nope", timeout=60)
    assert proc.returncode == 2 and "no sample flow nope" in proc.stderr


@pytest.mark.slow
@pytest.mark.ssh
@pytest.mark.timeout(300)
def test_one_flow_twice_end_to_end(tmp_path: Path) -> None:
    report = tmp_path / "decisions.md"
    out = result_of(run_benchmark("decisions", "--only", "waiting", "--no-simulated", "--json",
                                  "--report", str(report), timeout=290))
    (flow,) = out["flows"]
    assert flow["flow"] == "waiting" and len(flow["runs"]) == 2
    for r in flow["runs"]:
        assert r["errors"] == [] and r["status_before"] == "ok" and r["verdict_before"] != "none"
        assert r["stage"] and r["measured_s"] > 0 and r["host_after"] == "B"
        assert r["recommendation"]["predicted_low_s"] <= r["recommendation"]["predicted_high_s"]
    assert flow["runs"][0]["probed_by_plan"] and flow["targets"]["profiled_ok"]
    assert "| waiting | 1 |" in re.sub(r" {2,}", " ", report.read_text())
