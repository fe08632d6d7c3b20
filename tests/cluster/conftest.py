"""Fixtures: a real Dask scheduler and workers on 127.0.0.1 (subprocesses, stopped by PID)."""

from __future__ import annotations

from typing import Iterator

import pytest

from wiredprof.testing.localcluster import LocalDaskCluster, local_cluster


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[LocalDaskCluster]:
    """Two one-thread workers, shared by the tests that do not kill any."""
    with local_cluster(workers=2, nthreads=1) as cluster:
        yield cluster


@pytest.fixture
def own_cluster() -> Iterator[LocalDaskCluster]:
    """A cluster of its own, for a test that kills a worker."""
    with local_cluster(workers=2, nthreads=1) as cluster:
        yield cluster
