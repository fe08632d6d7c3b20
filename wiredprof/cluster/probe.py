"""What a Dask cluster offers, measured: each worker's threads, memory limit and speed vs here,
the round trip of a trivial task (wiredprof's whole per-call overhead on Dask), bandwidth,
and Python and package versions against this side's.

The speed rounds are the SSH probe's own (`wiredprof.remote.probe.speed_rounds`), run as tasks
pinned to each worker in turn. The saved file is a `wiredprof.probe/1` document, what the planner
reads (the workers' mean time per call, from their speeds, and the smallest memory limit,
since a call may land on any worker; the task round trip as RTT; `slots`: calls that run side by side at full speed), with
a `dask` section per worker.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from wiredprof.cluster.executor import ByValue, DaskExecutor
from wiredprof.cluster.task import worker_facts
from wiredprof.errors import ConnectError
from wiredprof.remote.probe import (
    ProbeResult,
    _calibrated_n,
    host_facts,
    probe,
    save_probe,
    speed_figures,
    speed_rounds,
)
from wiredprof.remote.serialize import register_project_modules

__all__ = ["WorkerProbe", "ClusterProbe", "probe_cluster", "save_cluster_probe", "worker_addresses", "on_worker",
           "cluster_parallelism", "PACKAGES"]

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
    cores: int = 0  # of the worker's machine


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


def worker_addresses(executor: DaskExecutor) -> list[str]:
    """The cluster's workers now (ConnectError when it has none)."""
    addresses = sorted(executor.client.scheduler_info().get("workers", {}))
    if not addresses:
        raise ConnectError(f"the Dask cluster {executor.host} ({executor.spec.scheduler}) has no worker left")
    return addresses


def on_worker(client: Any, address: str, fn: Any, *args: Any, timeout: float = 300.0) -> Any:
    """`fn(*args)` run as a task on the worker at `address` only (shipped by value)."""
    pin = {"workers": [address], "allow_other_workers": False, "pure": False}
    return client.submit(ByValue(fn), *args, **pin).result(timeout=timeout)


class _OneWorker:
    """`call(fn, *args)` on one worker only: what the SSH probe's speed rounds call."""

    def __init__(self, client: Any, address: str) -> None:
        self.client, self.address = client, address

    def call(self, fn: Any, *args: Any) -> Any:
        return on_worker(self.client, self.address, fn, *args)


def probe_cluster(
    executor: DaskExecutor, rtt_samples: int = 20, bandwidth_bytes: int = 4 * 1024 * 1024, rounds: int = 3
) -> ClusterProbe:
    """Measure the cluster behind `executor` (connecting if needed).

    Every worker alone first: its threads, memory and machine, and its speed with the SSH
    probe's own interleaved rounds (a round there, a round here, until they agree), so a
    worker's ratio is as steady as an SSH host's. Then the SSH probe through the executor (a
    task on any worker: round trips with wiredprof's at-most-once handshake, bandwidth);
    the cluster's speed is the workers' mean time per call (a call may land on any of them).
    """
    register_project_modules()
    client = executor.client
    n = _calibrated_n()
    workers, speeds, machines, iteration_s = [], [], [], []
    packages: dict[str, str | None] = {}
    for address in worker_addresses(executor):
        facts = on_worker(client, address, worker_facts, timeout=60)
        machine = on_worker(client, address, host_facts, timeout=60)
        speed = speed_rounds(cast(Any, _OneWorker(client, address)), n, min_rounds=max(3, rounds))
        figures = speed_figures(speed)
        iteration_s.append(figures["loop_iteration_s"])
        packages = facts["packages"]
        speeds.append(speed)
        machines.append(int(machine["cores"]))
        workers.append(WorkerProbe(
            address=address,
            threads=int(facts["threads"]),
            memory_limit=int(facts["memory_limit"]),
            host_memory=int(machine["memory_bytes"]),
            cpu_speed_ratio=figures["cpu_speed_ratio"],
            cpu_time_ratio=figures["cpu_time_ratio"],
            python=str(facts["python"]),
            hostname=str(facts["hostname"]),
            cores=int(machine["cores"]),
        ))
    here = "%d.%d.%d" % sys.version_info[:3]
    versions = {name: (_version(name), packages.get(name)) for name in PACKAGES}
    warnings = []
    pythons = sorted({w.python for w in workers})
    if any(p.split(".")[:2] != here.split(".")[:2] for p in pythons):
        warnings.append(f"the workers run Python {', '.join(pythons)}, this side {here}: pickled stages need "
                        "the same major.minor")
    warnings += [f"{name} {t} on the workers, {h} here" for name, (h, t) in versions.items() if h != t]
    # A call may land on any worker: the mean time per call over the workers (the harmonic mean
    # of their speeds), the range from the slowest round of any to the fastest of any, and the
    # smallest memory limit.
    time_ratio = _harmonic([w.cpu_time_ratio for w in workers])
    typical = min(range(len(workers)), key=lambda i: abs(workers[i].cpu_time_ratio - time_ratio))
    base = probe(cast(Any, executor), rtt_samples, bandwidth_bytes, rounds, speed=speeds[typical])
    extremes = [s.extremes() for s in speeds]
    cores, slots = cluster_parallelism(workers)
    cluster = replace(
        base,
        address=executor.spec.scheduler,
        cores=cores,
        slots=slots,
        cpu_model=f"Dask cluster, {len(workers)} worker(s)",
        memory_bytes=min((w.memory_limit or w.host_memory) for w in workers),
        cpu_speed_ratio=round(_harmonic([w.cpu_speed_ratio for w in workers]), 3),
        cpu_time_ratio=round(time_ratio, 3),
        ratio_low=round(min(low for low, _ in extremes), 4),
        ratio_high=round(max(high for _, high in extremes), 4),
        noisy=any(s.noisy for s in speeds),
        loop_iteration_s=statistics.fmean(iteration_s),
    )
    return ClusterProbe(cluster, workers, versions, here, warnings)


def _harmonic(ratios: list[float]) -> float:
    """The speed ratio whose time per call is the mean of the workers' (0 when one is unknown)."""
    return len(ratios) / sum(1.0 / r for r in ratios) if ratios and all(r > 0 for r in ratios) else 0.0


def cluster_parallelism(workers: list[WorkerProbe]) -> tuple[int, int]:
    """(cores, slots): the worker threads the machines' cores can run, and the calls of pure-Python
    code that run side by side at full speed: one per worker process (its threads share one GIL),
    at most one per core of each machine."""
    by_machine: dict[str, list[WorkerProbe]] = {}
    for w in workers:
        by_machine.setdefault(w.hostname, []).append(w)
    cores = slots = 0
    for on in by_machine.values():
        machine = max(w.cores for w in on) or sum(w.threads for w in on)
        cores += min(machine, sum(w.threads for w in on))
        slots += min(machine, len(on))
    return cores, slots


def save_cluster_probe(result: ClusterProbe, directory: Path) -> Path:
    """Write `directory/HOST.json` (atomically), readable by `wiredprof.remote.probe.load_probe`."""
    return save_probe(result.probe, directory, result.to_dict())
