"""benchmarks/reference.py in quick mode: it runs end to end and writes its report and JSON.

Never asserts a time or a speed-up (the machine is shared and noisy): only that every step
ran, and that the figures and the report have their structure. Needs root (cgroups,
network namespaces); skipped otherwise.

One quick run with `--target dask` serves both end-to-end tests: it runs the SSH target's
whole leg (the default target's run) and then the Dask leg beside it, in the same run.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks._run import REPO, result_of, run_benchmark

pytestmark = [pytest.mark.skipif(os.geteuid() != 0,
                                 reason="simulating hosts A and B needs root (cgroups, network namespaces)"),
              pytest.mark.xdist_group("reference_quick_run")]  # one worker makes the run, for both tests


def _quick_run(*args: str, timeout: float) -> dict:
    """`benchmarks.reference --quick --json ARGS`; skipped where hosts cannot be simulated."""
    proc = run_benchmark("reference", "--quick", "--json", *args, timeout=timeout)
    if proc.returncode == 2 and "cannot simulate hosts" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    return result_of(proc)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """`--quick --target dask --report`: the SSH target's figures and report, and the Dask leg's."""
    report = tmp_path_factory.mktemp("reference") / "reference.md"
    return _quick_run("--target", "dask", "--report", str(report), timeout=410), report


KEYS = ("scale", "repeat", "raw_speed_ratio", "stage_speedup", "pipeline_speedup", "predicted_stage_s",
        "measured_stage_s", "prediction_error_pct", "simulation", "spread", "targets", "machine")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_run_writes_report_and_json(quick_run: tuple[dict, Path]) -> None:
    out, report = quick_run
    for key in KEYS:
        assert key in out, key
    assert out["repeat"] == 1 and out["scale"] > 0
    for key in ("raw_speed_ratio", "stage_speedup", "pipeline_speedup", "predicted_stage_s",
                "measured_stage_s"):
        assert isinstance(out[key], float) and out[key] > 0, key
    assert isinstance(out["prediction_error_pct"], float)
    assert "simulated" in out["simulation"]["description"] and out["simulation"]["cpu_quota_us"] > 0
    assert set(out["targets"]) >= {"stage_speedup_met", "pipeline_speedup_met", "prediction_met"}
    steps = [s["cmd"].split()[1] for s in out["repeats"][0]["steps"]]
    assert steps[:5] == ["analyze", "hosts", "plan", "offload", "analyze"]
    text = report.read_text()
    for heading in ("# Reference case", "## Result", "## Per pipeline and per stage",
                    "## Timelines before and after", "## How A and B were simulated", "pipeline_3.core_logic"):
        assert heading in text, heading
    assert out["timeline_image"] and Path(out["timeline_image"]).is_file()


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_run_with_the_dask_target_side_by_side(quick_run: tuple[dict, Path]) -> None:
    """`--target dask`: B also as a real Dask scheduler and worker in B's namespace, same run."""
    out, report = quick_run
    dask = out["dask"]
    for key in ("stage_speedup", "pipeline_speedup", "predicted_stage_s", "measured_stage_s",
                "share_of_ssh_stage_speedup"):
        assert isinstance(dask[key], float) and dask[key] > 0, key
    assert isinstance(dask["prediction_error_pct"], float)
    assert set(dask["targets"]) >= {"share_of_ssh_met", "prediction_met"}
    leg = out["repeats"][0]["dask"]
    assert [s["cmd"].split()[1] for s in leg["steps"]][:4] == ["hosts", "plan", "offload", "analyze"]
    assert leg["probe"]["rtt_s"] > 0 and leg["probe"]["cores"] == 2
    assert "## B as a Dask cluster (`--target dask`), in the same run" in report.read_text()


def test_refuses_in_one_line_without_the_kernel_features(tmp_path: Path) -> None:
    """Where the simulation is impossible the command exits 2 with one line (here: a missing sshd)."""
    code = ("import sys, benchmarks.simhosts as sh, benchmarks.reference as r\n"
            "r.check_available = lambda: sh.check_available('/nonexistent/sshd')\n"
            "sys.exit(r.main(['--quick', '--json']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot simulate hosts A and B" in lines[0] and "sshd" in lines[0]
    assert proc.stdout == ""
