"""A host as the placement model sees it: its `HostCapacity`, from its saved probe.

A probe (`wiredprof hosts check HOST`: SSH or a Dask cluster) is saved under the project's
`.wiredprof/hosts/`; the model reads it here, and a host without one is measured on demand.
"""
from __future__ import annotations

from typing import Callable

from wiredprof.config import ProjectConfig
from wiredprof.errors import ConnectError, HostUnreachableError, UsageError
from wiredprof.placement.model import HostCapacity
from wiredprof.remote.probe import ProbeResult, load_probe
from wiredprof.statedir import probes_dir

__all__ = ["host_capacity", "probe_and_save", "capacity_from_probe", "SSH_REPLY_WAKES", "SSH_ACK_WAKES",
           "DASK_REPLY_WAKES"]

# Threads of this process woken one after another before a remote call's caller has its reply
# (each waits for the GIL and a core: see placement/model.py), counted on the code's path.
# SSH (remote/session.py): paramiko's transport thread reads the packet, the session's
# receiver thread takes the frame and settles the call, the caller wakes; and before it
# the start acknowledgement (at most once) wakes the first two as well, which B's work hides
# when it lasts longer than those waits. Measured on the plain sample flow (threads mode,
# a busy MQTT loop): a 0.2 ms stage took 29.4 ms on B, 5.4 of its process's 5.3 ms waits.
# Dask (cluster/executor.py): the client's event-loop thread learns the task is done, the
# Dask callback thread runs the executor's done-callback, whose `result()` waits for the
# loop thread to gather the value, then the callback thread again, then the caller.
SSH_REPLY_WAKES = 3
SSH_ACK_WAKES = 2
DASK_REPLY_WAKES = 5


def host_capacity(
    config: ProjectConfig, host: str, probe_missing: Callable[[str], None] | None = None
) -> HostCapacity:
    """The planner's view of `host`, from its saved probe (`wiredprof hosts check HOST`).

    With `probe_missing`, a host that has none yet is probed now (and the probe saved);
    `probe_missing(host)` is called first, to say so.
    """
    probe = load_probe(probes_dir(config.root), host)
    if probe is None and probe_missing is not None:
        probe_missing(host)
        probe = probe_and_save(config, host)
    if probe is None:
        raise UsageError(f"host {host!r} has not been measured yet: run `wiredprof hosts check {host}` first")
    return capacity_from_probe(probe)


def probe_and_save(config: ProjectConfig, host: str, accept_new: bool = False) -> ProbeResult:
    """Connect to `host`, measure it (`remote.probe.probe`) and save the probe; one-line errors."""
    from wiredprof.remote.executor import RemoteExecutor
    from wiredprof.remote.hosts import resolve_host
    from wiredprof.remote.probe import probe, save_probe

    from wiredprof.cluster.spec import dask_host

    cluster = dask_host(host, config.root)
    try:
        if cluster is not None:  # a Dask cluster: its own probe (wiredprof.cluster), saved the same way
            from wiredprof.cluster.hostcli import probe_and_save_cluster

            return probe_and_save_cluster(cluster, probes_dir(config.root))
        with RemoteExecutor(resolve_host(host, project=config.root), accept_new=accept_new) as executor:
            result = probe(executor)
    except ConnectError as exc:
        raise HostUnreachableError(f"host {host} is unreachable: {exc}") from None
    save_probe(result, probes_dir(config.root))
    return result


def capacity_from_probe(probe: ProbeResult) -> HostCapacity:
    """The model's view of a probed host."""
    return HostCapacity(
        name=probe.host,
        cpu_speed_ratio=probe.cpu_speed_ratio,
        cpu_time_ratio=probe.cpu_time_ratio,
        memory_bytes=probe.memory_bytes,
        cores=probe.cores,
        rtt_s=probe.rtt_s,
        bandwidth_bytes_per_s=probe.bandwidth_bytes_per_s,
        start_s=probe.connect_s,
        probed_at=probe.probed_at,
        busy_cores=probe.busy_cores,
        same_machine=probe.same_machine,
        ratio_spread=probe.ratio_spread,
        loop_share=probe.remote_loop_cpu_s / probe.remote_loop_s if probe.remote_loop_s > 0 else 0.0,
        noisy=probe.noisy,
        ratio_low=probe.ratio_low,
        ratio_high=probe.ratio_high,
        slots=probe.slots,
        reply_wakes=DASK_REPLY_WAKES if probe.slots else SSH_REPLY_WAKES,
        ack_wakes=0 if probe.slots else SSH_ACK_WAKES,
    )
