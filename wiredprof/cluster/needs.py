"""What a stage needs (issue 11's requirements) against every Dask worker's packages.

A call may land on any worker, so each worker is asked (a task pinned to it) what its
Python has, and compared on its own: one worker without a package fails the calls that
land there.

Provisioning stays refused for Dask hosts (`PROVISION_REFUSAL`): Dask's own `PipInstall`
worker plugin installs into each worker's running environment, shared with every other
user of the cluster (and restarts workers to load it); wiredprof builds only private
environments with this side's exact versions, and never changes a host's own Python.
"""

from __future__ import annotations

from wiredprof.cluster.executor import DaskExecutor
from wiredprof.cluster.probe import on_worker, worker_addresses
from wiredprof.remote.hostenv import Comparison, _host_facts, compare, inventory_from_facts
from wiredprof.remote.requirements import StageNeeds

__all__ = ["compare_workers", "provision_refusal"]


def compare_workers(executor: DaskExecutor, needs: StageNeeds) -> list[tuple[str, Comparison]]:
    """(worker address, its comparison with `needs`) for every worker of the cluster."""
    client = executor.client
    out = []
    for address in worker_addresses(executor):
        facts = on_worker(client, address, _host_facts)
        out.append((address, compare(needs, inventory_from_facts(f"{executor.host} {address}", facts))))
    return out


def provision_refusal(host: str, what: str = "what the stage needs") -> str:
    """The one line that says why a Dask host is not provisioned, and what to do instead."""
    return (f"{host} is a Dask cluster: wiredprof does not install into its workers (Dask's PipInstall plugin "
            "would change the environment every user of the cluster shares, and restart the workers): "
            f"install {what} in the workers' environment")
