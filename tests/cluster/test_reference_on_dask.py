"""samples/reference_flow.py with its core logic offloaded to a real loopback Dask cluster, through
`wiredprof run` and `wiredprof analyze`, in wiredflow's threads and processes modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from samples._workload import checksum_work, stable_seed
from samples.reference_flow import SUMMARY_PREFIX
from tests.samples._run import REPO, summary_of
from wiredprof.testing.localcluster import LocalDaskCluster

pytest.importorskip("wiredflow")
pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.timeout(240)]

BLOCKS = 30


def wiredprof(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", "from wiredprof.cli import main; main()", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=180)


def flow_args(workdir: Path, mode: str) -> list[str]:
    extra = ["--processes"] if mode == "processes" else []
    return [str(REPO / "samples" / "reference_flow.py"), "--", "--scale", "0.01", "--seconds", "6",
            "--core-blocks", str(BLOCKS), "--workdir", str(workdir), *extra]


def shipped_functions(cluster: LocalDaskCluster) -> int:
    from distributed import Client

    def count(dask_worker: Any) -> int:
        return len(getattr(dask_worker, "_wiredprof_functions", {}))

    with Client(cluster.address, set_as_default=False, timeout=30) as client:
        return sum(client.run(count).values())


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_core_logic_runs_on_the_cluster_with_the_same_outputs(
    mode: str, tmp_path: Path, own_cluster: LocalDaskCluster
) -> None:
    (tmp_path / "wiredprof.toml").write_text(
        f'[hosts.cluster]\ndask = "{own_cluster.address}"\n\n'
        '[offload."pipeline_3.core_logic"]\nhost = "cluster"\ntimeout_s = 120\n'
    )
    result = wiredprof(tmp_path, "run", *flow_args(tmp_path, mode))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline_3.core_logic ran on cluster:" in result.stderr
    summary = summary_of(result.stdout, SUMMARY_PREFIX)
    outputs = summary["pipelines"]["pipeline_3"]["core_outputs"]
    assert outputs and summary["mode"] == mode
    expected = checksum_work(stable_seed(None), BLOCKS)  # what the same call returns here
    for out in outputs:
        assert out["checksum"] == expected
        # pipeline_1's storage stayed on A; the worker read it through the scheduler
        assert isinstance(out["upstream_records"], int)
    assert shipped_functions(own_cluster) >= 1, "no stage was run by a Dask worker"


def test_analyze_reports_the_cluster_as_the_stages_host(tmp_path: Path, own_cluster: LocalDaskCluster) -> None:
    (tmp_path / "wiredprof.toml").write_text(
        f'[hosts.cluster]\ndask = "{own_cluster.address}"\n\n[offload."pipeline_3.core_logic"]\nhost = "cluster"\n'
    )
    result = wiredprof(tmp_path, "analyze", *flow_args(tmp_path, "threads")[:1], "--duration", "6", "--json",
                       *flow_args(tmp_path, "threads")[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    profile = json.loads(result.stdout)
    hosts = {f"{s['pipeline']}.{s['stage']}": s["host"] for s in profile["stages"]}
    assert hosts.pop("pipeline_3.core_logic") == "cluster" and set(hosts.values()) == {"local"}
    core = next(s for s in profile["stages"] if s["stage"] == "core_logic")
    assert core["calls"] >= 1 and core["errors"] == 0
    # plan measures a host that has no probe yet: the cluster probe, saved for next time
    result = wiredprof(tmp_path, "plan", "--host", "cluster", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no probe yet: measuring it now" in result.stderr
    assert json.loads(result.stdout)["hosts"][0]["name"] == "cluster"
    saved = json.loads((tmp_path / ".wiredprof" / "hosts" / "cluster.json").read_text())
    assert len(saved["dask"]["workers"]) == 2


def test_offload_checks_the_workers_and_refuses_provision(tmp_path: Path, own_cluster: LocalDaskCluster) -> None:
    (tmp_path / "wiredprof.toml").write_text(f'[hosts.cluster]\ndask = "{own_cluster.address}"\n')
    flow = str(REPO / "samples" / "reference_flow.py")
    result = wiredprof(tmp_path, "offload", "--stage", "core_logic", "--host", "cluster", flow, "--provision")
    assert result.returncode == 2 and "is a Dask cluster" in result.stderr and result.stderr.count("\n") == 1
    result = wiredprof(tmp_path, "offload", "--stage", "core_logic", "--host", "cluster", flow)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pipeline_3.core_logic will run on cluster (Python" in result.stdout
    assert 'host = "cluster"' in (tmp_path / "wiredprof.toml").read_text()
