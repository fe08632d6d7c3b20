"""A host as the placement model sees it: its `HostCapacity`, from its saved probe.

A probe (`wiredprof hosts check HOST`: SSH or a Dask cluster) is saved under the project's
`.wiredprof/hosts/`; the model reads it here, and a host without one is measured on demand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from wiredprof.errors import ConnectError, HostUnreachableError, UsageError

if TYPE_CHECKING:  # the model imports HostCapacity: no SSH or TOML library on its import path
    from wiredprof.config import ProjectConfig
    from wiredprof.remote.probe import ProbeResult

__all__ = ["HostCapacity", "host_capacity", "probe_and_save", "capacity_from_probe", "SSH_REPLY_WAKES",
           "SSH_ACK_WAKES", "DASK_REPLY_WAKES"]

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


@dataclass(frozen=True)
class HostCapacity:
    """What the planner needs to know about a host (from `wiredprof hosts check`)."""

    name: str
    cpu_speed_ratio: float  # single-thread speed relative to this machine (4.0 = 4x faster)
    # This machine's CPU seconds of the probe loop per wall second on the host (0: unknown);
    # equal to cpu_speed_ratio unless the probe waited here for a CPU (load, a CPU quota).
    cpu_time_ratio: float = 0.0
    memory_bytes: int = 0  # 0: unknown
    cores: int = 0
    rtt_s: float = 0.0
    bandwidth_bytes_per_s: float = 0.0  # 0: unknown (transfer not counted)
    start_s: float = 0.0  # connect + bootstrap, once per run
    probed_at: str = ""
    busy_cores: float = 0.0  # cores the host's other work kept busy while it was probed
    same_machine: bool = False  # the host is this machine (same machine-id and boot id)
    ratio_spread: float = 0.0  # relative spread of the probe's speed ratio over its rounds
    loop_share: float = 0.0  # share of a core the probe's loop got on the host (CPU / wall; 0: unknown)
    noisy: bool = False  # the probe's rounds did not agree within its bound
    ratio_low: float = 0.0  # the probe's slowest and fastest rounds' CPU-time ratio (0: unknown)
    ratio_high: float = 0.0
    slots: int = 0  # calls it runs side by side at full speed (a Dask cluster's worker processes); 0: cores
    # Threads of this process woken one after another to hand a reply (or serve a call-back) to
    # the caller, each paying the process's wake-up wait (see placement/model.py).
    reply_wakes: int = 0
    # The same for the start acknowledgement, before the reply: hidden behind the call's work on the host.
    ack_wakes: int = 0
    # The host's wall seconds per iteration of `speedloop.reference_loop` (0: unknown, an older probe).
    loop_iteration_s: float = 0.0


def host_capacity(
    config: ProjectConfig, host: str, probe_missing: Callable[[str], None] | None = None
) -> HostCapacity:
    """The planner's view of `host`, from its saved probe (`wiredprof hosts check HOST`).

    With `probe_missing`, a host that has none yet is probed now (and the probe saved);
    `probe_missing(host)` is called first, to say so.
    """
    from wiredprof.remote.probe import load_probe
    from wiredprof.statedir import probes_dir

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
    from wiredprof.statedir import probes_dir

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
        loop_iteration_s=probe.loop_iteration_s,
    )
