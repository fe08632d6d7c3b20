"""A stage's exception raised on a Dask worker that does not have the flow's file (as on a real
cluster host): its traceback still names the file and line, and shows the source line from A's copy.

The worker runs in a mount namespace of its own where the flow's directory is an empty tmpfs:
the file is on this side only, as it is for any host but this one.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from wiredprof.cluster.executor import DaskExecutor
from wiredprof.cluster.spec import DaskSpec
from wiredprof.testing.localcluster import LocalDaskCluster, start_local_cluster

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]

FLOW = '''\
class BatchRejected(Exception):
    pass


def core_logic(x):
    doubled = x * 2
    raise BatchRejected(f"the batch of {doubled} is bad")  # this very line must show on A
'''


def _hidden_dir_prefix(hidden: Path) -> tuple[str, ...]:
    """A command prefix that runs the worker with `hidden` covered by an empty tmpfs (skip if not allowed)."""
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c",
              f'mount -t tmpfs tmpfs "{hidden}" && exec "$@"', "sh")
    probe = subprocess.run([*prefix, "test", "!", "-e", str(hidden / "remote_flow.py")], capture_output=True,
                           timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot hide a directory from a worker here (unshare/mount): {probe.stderr!r:.200}")
    return prefix


@pytest.fixture
def flow_module(tmp_path: Path) -> Iterator[Any]:
    source = tmp_path / "flowsrc"
    source.mkdir()
    (source / "remote_flow.py").write_text(FLOW)
    spec = importlib.util.spec_from_file_location("remote_flow", source / "remote_flow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["remote_flow"] = module  # a module of the user's own, shipped by value
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        sys.modules.pop("remote_flow", None)


@pytest.fixture
def cluster_without_the_file(flow_module: Any) -> Iterator[LocalDaskCluster]:
    prefix = _hidden_dir_prefix(Path(flow_module.__file__).parent)
    cluster = start_local_cluster(workers=0)
    try:
        cluster.add_worker(1, prefix=prefix)
        cluster.wait_for_workers(1)
        yield cluster
    finally:
        cluster.stop()


def test_a_worker_traceback_names_the_flow_file_and_shows_the_source_line(
    flow_module: Any, cluster_without_the_file: LocalDaskCluster
) -> None:
    with DaskExecutor(DaskSpec("cluster", cluster_without_the_file.address)) as executor:
        with pytest.raises(Exception) as info:
            executor.call(flow_module.core_logic, 4)
    assert type(info.value).__name__ == "BatchRejected" and "the batch of 8 is bad" in str(info.value)
    tb = getattr(info.value, "remote_traceback", "")
    line = FLOW.splitlines().index(next(s for s in FLOW.splitlines() if "this very line" in s)) + 1
    assert f'File "{flow_module.__file__}", line {line}, in core_logic' in tb, tb
    assert 'raise BatchRejected(f"the batch of {doubled} is bad")  # this very line must show on A' in tb, tb
    assert "<dynamic-code>" not in tb
    assert "the batch of 8 is bad" in str(info.value.__cause__)  # shown as "Traceback on host ..."
