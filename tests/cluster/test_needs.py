"""`hosts check --for` on a Dask host compares what the stage needs with every worker's packages;
provisioning a Dask host is refused in one line."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands.clitools import one_line_error, wp
from tests.remote.hostb import tiny_here
from wiredprof.testing.localcluster import LocalDaskCluster, start_local_cluster

pytest.importorskip("wiredflow")
pytestmark = [pytest.mark.dask, pytest.mark.timeout(240)]

FLOW = Path(__file__).parents[1] / "flows" / "wiredflow_needs.py"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """wptiny 1.2.3 installed in a site directory on this side's path."""
    yield tiny_here(tmp_path, monkeypatch)
    sys.modules.pop("wptiny", None)


@pytest.fixture
def half_ready(site: Path) -> Iterator[tuple[LocalDaskCluster, str, str]]:
    """A cluster of two workers: one sees wptiny (its PYTHONPATH), one does not."""
    cluster = start_local_cluster(workers=0)
    try:
        cluster.add_worker(env={"PYTHONPATH": str(site)})
        with_it = cluster.wait_for_workers(1)[0]
        cluster.add_worker()
        without = next(w for w in cluster.wait_for_workers(2) if w != with_it)
        yield cluster, with_it, without
    finally:
        cluster.stop()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "project"
    d.mkdir()
    monkeypatch.chdir(d)
    shutil.copy(FLOW, d / "flow.py")
    return d


def test_check_for_compares_the_needs_with_every_worker(
    half_ready: tuple[LocalDaskCluster, str, str], project: Path
) -> None:
    cluster, with_it, without = half_ready
    assert wp("hosts", "add", "cluster", "--dask", cluster.address).exit_code == 0
    r = wp("hosts", "check", "cluster", "--for", "flow.py", "--stage", "core_logic", "--no-save", "--json")
    assert r.exit_code == 0, r.stderr
    needs = json.loads(r.stdout)["needs"]
    assert needs[with_it] == [{"distribution": "wptiny", "here": "1.2.3", "there": "1.2.3", "direct": True,
                               "state": "same"}]
    assert needs[without][0]["there"] is None and needs[without][0]["state"] == "missing on B"
    r = wp("hosts", "check", "cluster", "--for", "flow.py", "--stage", "core_logic", "--no-save")
    assert r.exit_code == 0, r.stderr
    assert f"pipeline_1.core_logic on cluster {with_it}: Python 3." in r.stdout
    assert f"pipeline_1.core_logic on cluster {without}: Python 3." in r.stdout
    assert "1 of 2 worker(s) lack this side's versions" in r.stdout
    assert "install wptiny==1.2.3 in the workers' environment" in r.stdout


def test_check_for_says_when_every_worker_has_it(dask_cluster: LocalDaskCluster, project: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIREDFLOW_NEEDS_MODULE", "tabulate")  # in the workers' environment too
    assert wp("hosts", "add", "cluster", "--dask", dask_cluster.address).exit_code == 0
    r = wp("hosts", "check", "cluster", "--for", "flow.py", "--no-save")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count("tabulate") >= 2 and "every worker of cluster has what the stages need" in r.stdout


def test_provisioning_a_dask_host_is_refused_in_one_line(project: Path) -> None:
    assert wp("hosts", "add", "cluster", "--dask", "tcp://127.0.0.1:1").exit_code == 0
    one_line_error(wp("hosts", "provision", "cluster", "--for", "flow.py"), "cluster is a Dask cluster",
                   "PipInstall", "install what flow.py's stages need in the workers' environment")
