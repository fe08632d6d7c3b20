"""`wiredprof hosts add|check` for a Dask host: what the command prints, the library does the work."""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from wiredprof.cluster.probe import ClusterProbe, probe_cluster, save_cluster_probe
from wiredprof.cluster.spec import DaskSpec, check_scheduler_address, import_distributed
from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import UsageError
from wiredprof.remote.probe import ProbeResult
from wiredprof.statedir import probes_dir

__all__ = ["add_dask_host", "check_dask_host", "measure", "probe_and_save_cluster"]


def add_dask_host(
    project: Path | None, name: str, address: str | None, dask: str | None, ca_file: str | None,
    cert: str | None, key: str | None, replace: bool,
) -> str:
    """Record `[hosts.NAME] dask = ...`; the line to print."""
    if dask is None:
        raise UsageError("--ca-file, --cert and --key are for a Dask host: give --dask tls://HOST:PORT too")
    if address is not None:
        raise UsageError("give either --address (an SSH host) or --dask (a Dask cluster), not both")
    try:
        check_scheduler_address(dask)
    except ValueError as exc:
        raise UsageError(f"--dask: {exc}") from None
    if (cert is None) != (key is None):
        raise UsageError("give both --cert and --key (this client's TLS certificate and its key)")
    config = ProjectConfig.find(project)
    config.add_host(HostEntry(name, "", dask=dask, ca_file=ca_file, cert=cert, key=key), replace=replace)
    return f"added Dask host {name} ({dask}) to {config.path}; check it with `wiredprof hosts check {name}`"


def measure(spec: DaskSpec) -> ClusterProbe:
    """Connect to the cluster and probe it."""
    import_distributed(spec.name)
    from wiredprof.cluster.executor import DaskExecutor

    with DaskExecutor(spec) as executor:
        return probe_cluster(executor)


def probe_and_save_cluster(spec: DaskSpec, directory: Path) -> ProbeResult:
    """Probe the cluster and save it for the planner (what `plan` does for a host not yet measured)."""
    result = measure(spec)
    save_cluster_probe(result, directory)
    return result.probe


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "no limit"


def check_dask_host(spec: DaskSpec, project: Path | None, as_json: bool, no_save: bool) -> str:
    """Probe the cluster, save it for the planner, and return what to print."""
    result = measure(spec)
    saved = None if no_save else save_cluster_probe(result, probes_dir(ProjectConfig.find(project).root))
    if as_json:
        return json.dumps(result.to_dict(), indent=2)
    p = result.probe
    rows = [
        ["host", f"{p.host} (Dask scheduler {p.address})"],
        ["connect", f"{p.connect_s * 1e3:.0f} ms"],
        ["workers", f"{len(result.workers)}, {p.cores} threads in all"],
        ["task round trip", f"{p.rtt_s * 1e3:.1f} ms median, {p.rtt_p95_s * 1e3:.1f} ms p95 (a trivial task)"],
        ["bandwidth", f"{p.bandwidth_bytes_per_s / 2**20:.0f} MiB/s"],
        ["python", f"{p.python} on the workers, {result.local_python} here"],
    ]
    for name, (here, there) in sorted(result.packages.items()):
        rows.append([name, f"{there} on the workers, {here} here" + ("" if here == there else "  (differs)")])
    text = str(tabulate(rows, tablefmt="plain"))
    table = [[w.address, w.threads, _gib(w.memory_limit), f"{w.cpu_speed_ratio:.2f}x", w.python, w.hostname]
             for w in result.workers]
    text += "\n\n" + str(tabulate(table, headers=["worker", "threads", "memory limit", "cpu vs here",
                                                  "python", "host"]))
    for warning in result.warnings:
        text += f"\nwarning: {warning}"
    if saved is not None:
        text += f"\nsaved to {saved}"
    return text
