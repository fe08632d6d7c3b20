"""The fault-injection benchmark runs end to end in its quick mode, against a real sshd.

Correctness is checked (no wrong result, no double execution, the flow with on_failure =
local on an idempotent stage goes on); timings on a shared machine are reported, not asserted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    report = tmp_path_factory.mktemp("bench") / "faults.md"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.faults", "--quick", "--json", "--report", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), report.read_text()


@pytest.mark.timeout(320)
def test_quick_run_injects_every_kind_and_nothing_goes_wrong(quick_run: tuple[dict, str]) -> None:
    result, report = quick_run
    assert result["schema"] == "wiredprof.bench.faults/1" and result["mode"] == "quick"
    for key in ("faults_injected", "kinds", "calls", "hung", "wrong_results", "double_executions", "recovery_s"):
        assert key in result, key
    kinds = set(result["kinds"])
    expected = {"kill_worker", "kill_session", "listener_restart", "freeze", "garbage_from_b", "oversized_from_b",
                "garbage_from_a", "worker_oom", "stage_oserror", "stage_exception"}
    skipped = {s.split(":")[0] for s in result["skipped"]}
    assert kinds | skipped == expected, result["skipped"]
    assert result["faults_injected"] == sum(result["kinds"].values()) >= 12
    assert result["wrong_results"] == 0, result["wrong"]
    assert result["double_executions"] == 0, result["double"]
    flow = result["flows"][0]
    assert flow["policy"] == "local idempotent" and flow["survived_all"] and flow["fallbacks"] >= 1, flow
    assert {"p50", "max"} <= set(result["recovery_s"])
    assert "# Fault injection" in report and "| faults injected |" in report
