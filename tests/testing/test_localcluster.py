"""The throwaway Dask cluster: a scheduler and a worker on loopback, gone by PID with its files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from wiredprof.testing.localcluster import start_local_cluster  # noqa: E402

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]


def test_stop_removes_the_processes_and_the_directory_it_made() -> None:
    cluster = start_local_cluster(workers=1)
    pids = [cluster.scheduler.pid if cluster.scheduler else 0, *cluster.workers]
    workdir = cluster.workdir
    assert workdir.is_dir() and (workdir / "scheduler.log").is_file() and len(pids) == 2
    cluster.stop()
    assert not workdir.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_directory_given_by_the_caller_is_kept(tmp_path: Path) -> None:
    cluster = start_local_cluster(workers=0, workdir=tmp_path)
    cluster.stop()
    assert (tmp_path / "scheduler.log").is_file()
