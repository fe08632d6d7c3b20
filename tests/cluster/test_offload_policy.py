"""An offloaded stage on a real loopback Dask cluster under the offload runtime's failure policy:
a worker killed mid-call, a cluster that cannot be reached, the stage's own exception."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.cluster.test_executor import StageFailure, _wait_started, fails, mark_and_sleep
from wiredprof.cluster.executor import DaskExecutor
from wiredprof.testing.localcluster import LocalDaskCluster
from wiredprof.cluster.spec import DaskSpec
from wiredprof.offload.entries import OffloadEntry
from wiredprof.errors import WorkerLostError
from wiredprof.offload.runtime import OffloadRuntime

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]

STAGE = "pipeline_3.core_logic"


def runtime_on(address: str, on_failure: str, retries: int = 0, idempotent: bool = False) -> OffloadRuntime:
    entry = OffloadEntry(STAGE, "cluster", on_failure=on_failure, retries=retries, idempotent=idempotent)
    spec = DaskSpec("cluster", address, connect_timeout_s=3)
    return OffloadRuntime({STAGE: entry}, connect=lambda host: DaskExecutor(spec))


@pytest.mark.parametrize("on_failure", ["fail", "local"])
def test_worker_killed_mid_call_fails_the_stage_and_it_never_runs_twice(
    own_cluster: LocalDaskCluster, tmp_path: Path, on_failure: str
) -> None:
    """At most once: the call started on the worker, so not even `local` runs it again here."""
    marks = tmp_path / "starts"
    runtime = runtime_on(own_cluster.address, on_failure)
    try:
        remote = runtime._remote(runtime.entries[STAGE], mark_and_sleep)

        def kill_when_started() -> None:
            (pid,) = _wait_started(marks, 1)
            own_cluster.kill_worker(pid)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        with pytest.raises(WorkerLostError):
            remote(str(marks), 4.0)
        killer.join(30)
        time.sleep(3)  # Dask re-runs the task on the other worker: refused before the stage
        assert len(marks.read_text().split()) == 1
        assert runtime.counters[STAGE].fallbacks == 0 and runtime.counters[STAGE].link_losses == 1
    finally:
        runtime.close()


def test_an_idempotent_stage_is_run_again_by_dask_on_another_worker(
    own_cluster: LocalDaskCluster, tmp_path: Path
) -> None:
    marks = tmp_path / "starts"
    runtime = runtime_on(own_cluster.address, "local", idempotent=True)
    try:
        remote = runtime._remote(runtime.entries[STAGE], mark_and_sleep)
        killed: list[int] = []

        def kill_when_started() -> None:
            (pid,) = _wait_started(marks, 1)
            own_cluster.kill_worker(pid)
            killed.append(pid)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        second = remote(str(marks), 2.0)
        killer.join(30)
        assert second != killed[0] and second != os.getpid()  # the other worker, not here
        assert len(marks.read_text().split()) == 2 and runtime.counters[STAGE].fallbacks == 0
    finally:
        runtime.close()


def test_a_cluster_that_cannot_be_reached_runs_the_stage_here_under_on_failure_local(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = runtime_on(f"tcp://127.0.0.1:{port}", "local")
    try:
        remote = runtime._remote(runtime.entries[STAGE], mark_and_sleep)
        assert remote(str(tmp_path / "starts"), 0.0) == os.getpid()  # never started there: run here
        assert runtime.counters[STAGE].fallbacks == 1
    finally:
        runtime.close()


def test_the_stages_own_exception_is_never_run_again_here(dask_cluster: LocalDaskCluster) -> None:
    runtime = runtime_on(dask_cluster.address, "local", retries=2)
    try:
        remote = runtime._remote(runtime.entries[STAGE], fails)
        with pytest.raises(StageFailure):
            remote("its own")
        assert runtime.counters[STAGE].fallbacks == 0 and runtime.counters[STAGE].retries == 0
    finally:
        runtime.close()
