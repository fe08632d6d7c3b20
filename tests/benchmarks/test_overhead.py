"""The overhead benchmark runs end to end in its quick mode and reports what it measured.

Only the structure is checked: timings on a shared machine are not assertions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.benchmarks._run import REPO, result_of, run_benchmark
WORKLOADS = {"trivial", "cpu_1ms", "deep"}

pytestmark = pytest.mark.xdist_group("overhead_quick_run")  # one worker runs the benchmark once for all


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    report = tmp_path_factory.mktemp("bench") / "overhead.md"
    # As a script (`python benchmarks/overhead.py`), the form its report's command line shows.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "overhead.py"), "--quick", "--json", "--report", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )
    result = result_of(proc, tail=2000)
    assert json.loads(report.with_suffix(".json").read_text())["schema"] == result["schema"]
    return result, report.read_text()


def test_quick_run_measures_every_workload_and_tool(quick_run: tuple[dict, str]) -> None:
    result, _ = quick_run
    assert result["schema"] == "wiredprof.bench.overhead/1"
    assert result["mode"] == "quick"
    workloads = result["per_call"]["workloads"]
    assert set(workloads) == WORKLOADS
    names = {t["name"] for t in result["tools"]}
    assert {"wiredprof", "wiredprof-inactive", "cProfile"} <= names
    for skipped in result["skipped"]:  # a peer that is not installed is named, never silently lost
        assert "not installed" in skipped
    for rows in workloads.values():
        assert set(rows) == names
        for row in rows.values():
            for key in ("added_us", "added_cpu_us", "plain_us", "plain_cpu_us", "instrumented_us", "slowdown_pct",
                        "slowdown_cpu_pct", "pairs"):
                assert isinstance(row[key], (int, float)), key
            assert row["plain_us"] > 0 and row["instrumented_us"] > 0


def test_quick_run_measures_memory_and_reference_stage(quick_run: tuple[dict, str]) -> None:
    result, _ = quick_run
    mem = result["memory"]
    assert mem["calls"] > 0
    for label in ("recorder", "span_tuples", "span_objects"):
        assert {"tracemalloc_mb", "rss_mb"} <= set(mem[label])
    ref = result["reference"]
    # Every instrumented call was recorded, either in the timings or as a sampled call.
    assert ref["wiredprof_calls"] + ref["wiredprof_sampled_calls"] == ref["calls"]
    for key in ("paired_diff_pct", "wiredprof_vs_plain_pct", "wiredprof_vs_outer_pct"):
        assert isinstance(ref[key], float)
    assert {"Recorder.exit", "time.thread_time()"} <= set(result["cold_warm"])
    assert result["breakdown_ns"]["@wiredprof.stage call"] > 0
    assert result["breakdown_ns"]["fold of a batch of spans, per span"] > 0
    assert len(result["targets"]) == 4
    assert all(isinstance(t["met"], bool) for t in result["targets"])


def test_quick_run_measures_throughput_at_scale_and_the_samplers_cost(quick_run: tuple[dict, str]) -> None:
    result, text = quick_run
    rows = result["throughput"]["pipelines"]
    assert set(rows) == {"4", "20"}  # 100 in a full run
    for row in rows.values():
        assert min(row["plain_calls"]) > 0 and min(row["profiled_calls"]) > 0
        assert row["ratio_pct"] == pytest.approx(100 * sum(row["profiled_calls"]) / sum(row["plain_calls"]))
    budget = result["sampler_budget"]
    if "skipped" not in budget:
        assert set(budget["threads"]) == {"4", "20", "100"}
        assert all(r["ticks_per_s"] > 0 for r in budget["threads"].values())
    assert "## Throughput of a high-rate flow" in text and "## The thread-state sampler's cost" in text


def test_quick_run_writes_the_report(quick_run: tuple[dict, str]) -> None:
    result, text = quick_run
    assert text.startswith("# wiredprof instrumentation overhead")
    for heading in ("## Targets", "## Cost per stage call", "## Memory after", "## Reference-like CPU stage",
                    "## Machine", "## Reproduce"):
        assert heading in text
    assert result["machine"]["cpu_model"] in text
    assert "benchmarks/overhead.py --quick" in text


def test_runs_as_a_module() -> None:
    proc = run_benchmark("overhead", "--help", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout
