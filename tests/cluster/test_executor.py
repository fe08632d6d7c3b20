"""DaskExecutor against a real loopback Dask cluster: results, the stage's own errors vs the
cluster's, objects kept on A, stateful stages, a worker lost mid-call, timeouts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from wiredprof.cluster.executor import DaskExecutor
from wiredprof.testing.localcluster import LocalDaskCluster
from wiredprof.cluster.spec import DaskSpec
from wiredprof.errors import CallTimeoutError, ConnectError, RemoteError, WorkerLostError

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]


@pytest.fixture
def executor(dask_cluster: LocalDaskCluster) -> Iterator[DaskExecutor]:
    with DaskExecutor(DaskSpec("cluster", dask_cluster.address)) as ex:
        yield ex


class StageFailure(Exception):
    pass


def double(x: int) -> int:
    return 2 * x


def fails(message: str) -> None:
    raise StageFailure(message)


def test_result_and_the_worker_that_ran_it(executor: DaskExecutor, dask_cluster: LocalDaskCluster) -> None:
    assert executor.call(double, 21) == 42
    assert executor.submit_call(double, (5,)).result(timeout=30) == 10
    workers = dask_cluster.wait_for_workers(2)
    assert executor.records[-1].worker in workers and executor.records[-1].ok
    assert executor.hello.workers == 2


def test_the_stages_own_exception_is_its_result_not_a_link_failure(executor: DaskExecutor) -> None:
    with pytest.raises(StageFailure, match="bad input") as info:
        executor.call(fails, "bad input")
    assert getattr(info.value, "wiredprof_origin", None) == "stage"
    assert "in fails" in getattr(info.value, "remote_traceback", "")
    assert not isinstance(info.value, (WorkerLostError, ConnectError, CallTimeoutError))


def test_an_exception_type_missing_here_comes_back_as_remote_error(executor: DaskExecutor) -> None:
    def raise_unpicklable() -> None:
        class Local(Exception):
            def __reduce__(self) -> Any:
                raise TypeError("no")

        raise Local("only on the worker")

    with pytest.raises(RemoteError, match="only on the worker"):
        executor.call(raise_unpicklable)


class Store:
    """Like a wiredflow storage: holds a lock, so it stays on A; its methods run here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows = [1, 2, 3]
        self.calls_from: list[int] = []

    def count(self) -> int:
        self.calls_from.append(os.getpid())
        return len(self.rows)


def read_store(db_connectors: dict[str, Any]) -> int:
    return int(db_connectors["pipeline_1"].count()) * 10


def test_objects_that_stay_on_a_are_reached_through_the_scheduler(executor: DaskExecutor) -> None:
    store = Store()
    assert executor.call(read_store, {"pipeline_1": store}) == 30
    assert store.calls_from == [os.getpid()]  # the method ran here, on host A


def scheduler_queues(dask_scheduler: Any) -> list[str]:
    return sorted(dask_scheduler.extensions["queues"].queues)


def test_no_queue_is_left_on_the_scheduler_per_call(dask_cluster: LocalDaskCluster) -> None:
    from wiredprof.cluster.executor import ByValue

    with DaskExecutor(DaskSpec("cluster", dask_cluster.address)) as ex:
        for _ in range(5):
            assert ex.call(read_store, {"pipeline_1": Store()}) == 30
        time.sleep(0.5)  # the workers' releases are one-way messages
        left = ex.client.run_on_scheduler(ByValue(scheduler_queues))
        assert left == [f"wiredprof-{ex.session}-requests"], left
        client = ex.client
    with DaskExecutor(DaskSpec("cluster", dask_cluster.address)) as other:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = other.client.run_on_scheduler(ByValue(scheduler_queues))
            if f"wiredprof-{ex.session}-requests" not in left:
                break
            time.sleep(0.2)
        assert f"wiredprof-{ex.session}-requests" not in left and client.status != "running"


def make_counter() -> Callable[[], int]:
    seen: list[int] = []

    def counter() -> int:
        seen.append(1)
        return len(seen)

    return counter


def test_a_stateful_stage_keeps_its_state_on_one_worker(executor: DaskExecutor) -> None:
    counter = make_counter()
    assert [executor.call(counter) for _ in range(4)] == [1, 2, 3, 4]
    assert len({r.worker for r in executor.records[-4:]}) == 1


def test_timeout_is_a_link_failure(executor: DaskExecutor) -> None:
    with pytest.raises(CallTimeoutError) as info:
        executor.call_with_timeout(1.0, time.sleep, 30)
    assert getattr(info.value, "started", None) is True


def test_unreachable_scheduler_is_a_connect_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = DaskExecutor(DaskSpec("gone", f"tcp://127.0.0.1:{port}", connect_timeout_s=2))
    with pytest.raises(ConnectError, match="cannot reach the Dask scheduler of gone"):
        ex.connect()
    ex.close()


def mark_and_sleep(path: str, seconds: float) -> int:
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return os.getpid()


def _wait_started(path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return [int(x) for x in lines]
        time.sleep(0.05)
    raise AssertionError(f"the call did not start ({path})")


def test_worker_killed_mid_call_fails_it_and_it_never_runs_twice(
    own_cluster: LocalDaskCluster, tmp_path: Path
) -> None:
    marks = tmp_path / "starts"
    with DaskExecutor(DaskSpec("cluster", own_cluster.address)) as ex:
        future = ex.submit_call(mark_and_sleep, (str(marks), 4.0))
        (pid,) = _wait_started(marks, 1)
        own_cluster.kill_worker(pid)
        with pytest.raises(WorkerLostError) as info:
            future.result(timeout=60)
        assert getattr(info.value, "started", None) is True
        time.sleep(3)  # Dask re-runs the task on the other worker: it must be refused before the stage
        assert len(marks.read_text().split()) == 1
        assert ex.call(double, 4) == 8  # the cluster is still usable


def test_an_idempotent_call_may_run_again_on_another_worker(own_cluster: LocalDaskCluster, tmp_path: Path) -> None:
    marks = tmp_path / "starts"
    with DaskExecutor(DaskSpec("cluster", own_cluster.address)) as ex:
        future = ex.submit_call(mark_and_sleep, (str(marks), 2.0), idempotent=True)
        (pid,) = _wait_started(marks, 1)
        own_cluster.kill_worker(pid)
        second = future.result(timeout=60)
        assert second != pid and len(marks.read_text().split()) == 2


_NO_WIREDPROF = """
import sys
class _NoWiredprof:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "wiredprof":
            raise ImportError("blocked: this worker has no " + name)
        return None
sys.meta_path.insert(0, _NoWiredprof())
"""


def can_import_wiredprof() -> str:
    try:
        import wiredprof  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return "importable"


def test_a_worker_without_wiredprof_installed_runs_stages(tmp_path: Path) -> None:
    """wiredprof's task code and the user's functions travel by value: nothing to install there."""
    from wiredprof.testing.localcluster import start_local_cluster

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_WIREDPROF)
    cluster = start_local_cluster(workers=0)
    try:
        cluster.add_worker(env={"PYTHONPATH": str(site)})
        cluster.wait_for_workers(1)
        with DaskExecutor(DaskSpec("bare", cluster.address)) as ex:
            assert ex.call(can_import_wiredprof) == "blocked: this worker has no wiredprof"
            assert ex.call(read_store, {"pipeline_1": Store()}) == 30
            with pytest.raises(StageFailure):
                ex.call(fails, "still the stage's own")
            from wiredprof.cluster.probe import probe_cluster

            probe = probe_cluster(ex, rtt_samples=3, bandwidth_bytes=1 << 16, rounds=1)
            assert [w.threads for w in probe.workers] == [1] and probe.probe.rtt_s > 0
    finally:
        cluster.stop()
