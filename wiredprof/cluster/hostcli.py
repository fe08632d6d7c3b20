"""`wiredprof hosts add|check` for a Dask host: what the command prints, the library does the work."""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from wiredprof.cluster.probe import ClusterProbe, probe_cluster, save_cluster_probe
from wiredprof.cluster.spec import DaskSpec, check_scheduler_address, import_distributed
from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import UsageError
from wiredprof.remote.hostenv import Comparison
from wiredprof.remote.probe import ProbeResult
from wiredprof.remote.requirements import StageNeeds
from wiredprof.stages import StageName
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


def measure(spec: DaskSpec, needs: StageNeeds | None = None) -> tuple[ClusterProbe, list[tuple[str, Comparison]]]:
    """Connect to the cluster and probe it; with `needs`, compare them with every worker's packages."""
    import_distributed(spec.name)
    from wiredprof.cluster.executor import DaskExecutor
    from wiredprof.cluster.needs import compare_workers

    with DaskExecutor(spec) as executor:
        result = probe_cluster(executor)
        return result, (compare_workers(executor, needs) if needs is not None else [])


def probe_and_save_cluster(spec: DaskSpec, directory: Path) -> ProbeResult:
    """Probe the cluster and save it for the planner (what `plan` does for a host not yet measured)."""
    result, _ = measure(spec)
    save_cluster_probe(result, directory)
    return result.probe


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "no limit"


def check_dask_host(
    spec: DaskSpec, project: Path | None, as_json: bool, no_save: bool,
    needs: tuple[StageNeeds, list[StageName]] | None = None,
) -> str:
    """Probe the cluster, save it for the planner, and return what to print.

    `needs` (what a flow's stages need, and those stages): also compared with every worker.
    """
    result, comparisons = measure(spec, needs[0] if needs is not None else None)
    saved = None if no_save else save_cluster_probe(result, probes_dir(ProjectConfig.find(project).root))
    if as_json:
        data = result.to_dict()
        if needs is not None:
            data["needs"] = {worker: [{"distribution": d.name, "here": d.version, "there": there, "direct": d.direct,
                                       "state": c.state(d.version, there)} for d, there in c.rows]
                             for worker, c in comparisons}
        return json.dumps(data, indent=2)
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
    if needs is not None:
        text += "\n\n" + _needs_text(spec.name, comparisons, needs[1])
    return text


def _needs_text(host: str, comparisons: list[tuple[str, Comparison]], stages: list[StageName]) -> str:
    """Every worker's table (what the stages need, here and there), then what to do when one lacks it."""
    from wiredprof.cluster.needs import provision_refusal
    from wiredprof.commands.needs import needs_report

    parts = [needs_report(c, stages) for _, c in comparisons]
    short = [(w, c) for w, c in comparisons if not c.ok]
    if short:
        pins = sorted({d.pin for _, c in short for d in c.missing} | {d.pin for _, c in short for d, _ in c.different})
        parts.append(f"{len(short)} of {len(comparisons)} worker(s) lack this side's versions: "
                     f"{provision_refusal(host, ' '.join(pins))}")
    else:
        parts.append(f"every worker of {host} has what the stages need, at this side's versions")
    return "\n".join(parts)
