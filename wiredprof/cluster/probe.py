"""What a Dask cluster offers, measured: each worker's threads, memory limit and speed vs here,
the round trip of a trivial task (wiredprof's whole per-call overhead on Dask), bandwidth,
and Python and package versions against this side's.

The CPU loop is the SSH probe's own (`wiredprof.remote.probe.cpu_loop_times`), run as a task
pinned to every worker. The saved file is a `wiredprof.probe/1` document, what the planner
reads (threads in all as cores; the slowest worker's speed and the smallest memory limit, since
a call may land on any worker; the task round trip as RTT), with a `dask` section per worker.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from wiredprof.cluster.executor import ByValue, DaskExecutor
from wiredprof.cluster.task import worker_facts
from wiredprof.errors import ConnectError
from wiredprof.remote.probe import ProbeResult, _calibrated_n, cpu_loop_times, host_facts, probe
from wiredprof.remote.serialize import register_project_modules

__all__ = ["WorkerProbe", "ClusterProbe", "probe_cluster", "save_cluster_probe", "PACKAGES"]

PACKAGES = ("cloudpickle", "dask", "distributed")


@dataclass(frozen=True)
class WorkerProbe:
    """One Dask worker, measured."""

    address: str
    threads: int
    memory_limit: int  # bytes; 0: no limit set (the host's memory applies)
    host_memory: int
    cpu_speed_ratio: float
    cpu_time_ratio: float
    python: str
    hostname: str


@dataclass(frozen=True)
class ClusterProbe:
    """The cluster as the planner sees it (`probe`), and each worker."""

    probe: ProbeResult
    workers: list[WorkerProbe]
    packages: dict[str, tuple[str | None, str | None]]  # name: (here, on the workers)
    local_python: str
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The `wiredprof.probe/1` document, with the per-worker `dask` section."""
        return {
            **self.probe.to_dict(),
            "dask": {
                "workers": [asdict(w) for w in self.workers],
                "packages": {k: {"here": h, "workers": t} for k, (h, t) in self.packages.items()},
                "local_python": self.local_python,
                "warnings": self.warnings,
            },
        }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def probe_cluster(
    executor: DaskExecutor, rtt_samples: int = 20, bandwidth_bytes: int = 4 * 1024 * 1024, rounds: int = 3
) -> ClusterProbe:
    """Measure the cluster behind `executor` (connecting if needed).

    The SSH probe runs first through the executor (a task on any worker: round trips with
    wiredprof's at-most-once handshake, bandwidth); then every worker is measured alone.
    """
    register_project_modules()
    client = executor.client
    addresses = sorted(client.scheduler_info().get("workers", {}))
    if not addresses:
        raise ConnectError(f"the Dask cluster {executor.host} ({executor.spec.scheduler}) has no worker left")
    base = probe(cast(Any, executor), rtt_samples, bandwidth_bytes, rounds)
    n = _calibrated_n()
    local = cpu_loop_times(n, rounds)
    local_wall = min(w for w, _ in local)
    local_cpu = statistics.median(c for _, c in local)
    workers = []
    packages: dict[str, str | None] = {}
    for address in addresses:
        pin = {"workers": [address], "allow_other_workers": False, "pure": False}
        facts = client.submit(ByValue(worker_facts), **pin).result(timeout=60)
        machine = client.submit(ByValue(host_facts), **pin).result(timeout=60)
        times = client.submit(ByValue(cpu_loop_times), n, rounds, **pin).result(timeout=300)
        remote_wall = min(w for w, _ in times)
        packages = facts["packages"]
        workers.append(WorkerProbe(
            address=address,
            threads=int(facts["threads"]),
            memory_limit=int(facts["memory_limit"]),
            host_memory=int(machine["memory_bytes"]),
            cpu_speed_ratio=round(local_wall / remote_wall, 3) if remote_wall > 0 else 0.0,
            cpu_time_ratio=round(local_cpu / statistics.median(w for w, _ in times), 3),
            python=str(facts["python"]),
            hostname=str(facts["hostname"]),
        ))
    here = "%d.%d.%d" % sys.version_info[:3]
    versions = {name: (_version(name), packages.get(name)) for name in PACKAGES}
    warnings = []
    pythons = sorted({w.python for w in workers})
    if any(p.split(".")[:2] != here.split(".")[:2] for p in pythons):
        warnings.append(f"the workers run Python {', '.join(pythons)}, this side {here}: pickled stages need "
                        "the same major.minor")
    warnings += [f"{name} {t} on the workers, {h} here" for name, (h, t) in versions.items() if h != t]
    # A call may land on any worker: plan with the slowest one and the smallest memory limit.
    slowest = min(workers, key=lambda w: w.cpu_speed_ratio)
    cluster = replace(
        base,
        address=executor.spec.scheduler,
        cores=sum(w.threads for w in workers),
        cpu_model=f"Dask cluster, {len(workers)} worker(s)",
        memory_bytes=min((w.memory_limit or w.host_memory) for w in workers),
        cpu_speed_ratio=slowest.cpu_speed_ratio,
        cpu_time_ratio=slowest.cpu_time_ratio,
        local_loop_s=local_wall,
        remote_loop_s=local_wall / slowest.cpu_speed_ratio if slowest.cpu_speed_ratio else 0.0,
    )
    return ClusterProbe(cluster, workers, versions, here, warnings)


def save_cluster_probe(result: ClusterProbe, directory: Path) -> Path:
    """Write `directory/HOST.json` (atomically), readable by `wiredprof.remote.probe.load_probe`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.probe.host}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
    return path
