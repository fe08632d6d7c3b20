"""The fault-injection benchmark runs end to end in its quick mode, against a real sshd.

Correctness is checked (no wrong result, no double execution, the flow with on_failure =
local on an idempotent stage goes on); timings on a shared machine are reported, not asserted.
"""
from __future__ import annotations

import re

import pytest

from tests.benchmarks._run import result_of, run_benchmark

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.xdist_group("faults_quick_run")]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    report = tmp_path_factory.mktemp("bench") / "faults.md"
    proc = run_benchmark("faults", "--quick", "--json", "--report", str(report), timeout=300)
    return result_of(proc), report.read_text()


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
    assert "# Fault injection" in report and re.search(r"^\| faults injected +\| \d+ +\|$", report, re.M)
