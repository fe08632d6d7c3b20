"""A real Dask cluster on 127.0.0.1: `dask scheduler` and `dask worker` processes, stopped by PID.

For the tests, the benchmarks and trying things out, as `wiredprof.testing.localsshd` is for
SSH. Each process runs in its own process group; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from wiredprof.testing.procs import stop_group

__all__ = ["LocalDaskCluster", "DaskClusterUnavailable", "start_local_cluster", "local_cluster"]

log = logging.getLogger(__name__)


class DaskClusterUnavailable(RuntimeError):
    """The scheduler or a worker did not come up in time."""


def _free_port(host: str) -> int:
    """A free port of `host`; for an address of another network namespace (not bindable
    here), a port free on loopback: that namespace is fresh, so it is free there too."""
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_accepts(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


def _tls_flags(tls: tuple[Path, Path, Path] | None) -> list[str]:
    if tls is None:
        return []
    ca, cert, key = tls
    return ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]


@dataclass
class LocalDaskCluster:
    """A running scheduler and its workers, each a process of its own."""

    address: str
    host: str
    port: int
    workdir: Path
    python: str = sys.executable
    prefix: tuple[str, ...] = ()
    tls: tuple[Path, Path, Path] | None = None  # CA file, certificate, key: every process speaks tls://
    scheduler: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    def add_worker(
        self,
        nthreads: int = 1,
        memory_limit: str = "0",
        nanny: bool = False,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] | None = None,
        worker_host: str | None = None,
    ) -> int:
        """Start one `dask worker` (no dashboard); returns its PID. Wait with `wait_for_workers`."""
        n = len(self.workers)
        log_file = (self.workdir / f"worker-{n}.log").open("wb")
        command = [
            *(self.prefix if prefix is None else prefix), self.python, "-m", "distributed.cli.dask_worker",
            self.address, "--nthreads", str(nthreads), "--memory-limit", memory_limit,
            "--host", worker_host or self.host, "--no-dashboard", "--nanny" if nanny else "--no-nanny",
            "--local-directory", str(self.workdir / f"worker-{n}"), "--name", f"w{n}", *_tls_flags(self.tls),
        ]
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        log_file.close()
        self.workers[proc.pid] = proc
        return proc.pid

    def wait_for_workers(self, count: int, timeout_s: float = 60.0) -> list[str]:
        """Block until `count` workers are connected (bounded); their addresses."""
        from wiredprof.cluster.task import _distributed

        security = None
        if self.tls is not None:
            ca, cert, key = (str(p) for p in self.tls)
            security = _distributed().Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                                               require_encryption=True)
        with _distributed().Client(self.address, timeout=timeout_s, set_as_default=False,
                                   security=security) as client:
            try:
                client.wait_for_workers(count, timeout=timeout_s)
            except TimeoutError:
                raise DaskClusterUnavailable(f"{count} Dask worker(s) did not join {self.address} within "
                                             f"{timeout_s:g} s; see {self.workdir}") from None
            return sorted(client.scheduler_info().get("workers", {}))

    def kill_worker(self, pid: int, sig: int = signal.SIGKILL) -> None:
        """Kill one worker process (a worker lost mid-call, for the tests)."""
        proc = self.workers.pop(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=10)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every worker, then the scheduler, by PID; bounded."""
        for pid in list(self.workers):
            stop_group(self.workers.pop(pid), timeout_s, "dask worker")
        if self.scheduler is not None:
            stop_group(self.scheduler, timeout_s, "dask scheduler")
            self.scheduler = None


def start_local_cluster(
    workers: int = 1,
    nthreads: int = 1,
    host: str = "127.0.0.1",
    *,
    python: str = sys.executable,
    prefix: Sequence[str] = (),
    startup_timeout_s: float = 60.0,
    workdir: Path | None = None,
    tls: tuple[Path, Path, Path] | None = None,
) -> LocalDaskCluster:
    """Start a scheduler on a free port of `host` and `workers` workers; raises `DaskClusterUnavailable`.

    `prefix` runs every process under a wrapper, e.g. `("ip", "netns", "exec", NS)` (which
    execs the command, so the PID stays the one stopped).
    """
    directory = workdir or Path(tempfile.mkdtemp(prefix="wiredprof-dask-"))
    port = _free_port(host)
    log_file = (directory / "scheduler.log").open("wb")
    command = [*prefix, python, "-m", "distributed.cli.dask_scheduler", "--host", host, "--port", str(port),
               "--no-dashboard", "--no-show", *_tls_flags(tls)]
    if tls is not None:
        command += ["--protocol", "tls"]
    proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    log_file.close()
    scheme = "tls" if tls is not None else "tcp"
    cluster = LocalDaskCluster(f"{scheme}://{host}:{port}", host, port, directory, python, tuple(prefix), tls, proc)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _port_accepts(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DaskClusterUnavailable(f"the Dask scheduler did not come up on {host}:{port}: see "
                                             f"{directory / 'scheduler.log'}")
            time.sleep(0.1)
        for _ in range(workers):
            cluster.add_worker(nthreads)
        if workers:
            cluster.wait_for_workers(workers, max(1.0, deadline - time.monotonic()))
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def local_cluster(workers: int = 1, nthreads: int = 1) -> Iterator[LocalDaskCluster]:
    """`start_local_cluster` as a context manager: stopped on exit."""
    cluster = start_local_cluster(workers, nthreads)
    try:
        yield cluster
    finally:
        cluster.stop()
