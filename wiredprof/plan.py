"""The offload plan of a project: `[offload."PIPELINE.STAGE"]` tables, checked and applied.

Where things live: the plan in the project's configuration (wiredprof.toml or
`[tool.wiredprof]`), host probes and the last profile under `.wiredprof/` beside it.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from wiredprof.config import OffloadEntry, ProjectConfig
from wiredprof.discovery import discover_stages
from wiredprof.errors import ConnectError, UsageError, WiredprofError
from wiredprof.offload import OffloadRuntime
from wiredprof.planner import HostCapacity
from wiredprof.profile import Profile, load_profile
from wiredprof.remote.probe import ProbeResult, load_probe
from wiredprof.stages import StageName, offload_refusal, resolve_stage

__all__ = [
    "last_profile_path",
    "save_last_profile",
    "load_last_profile",
    "host_capacity",
    "probe_and_save",
    "check_offloads_exist",
    "known_stages",
    "stage_refusals",
    "offload_runtime",
    "HostUnreachableError",
]

log = logging.getLogger(__name__)


class HostUnreachableError(UsageError):
    """The host did not answer (no route, refused, timed out)."""


def state_dir(config: ProjectConfig) -> Path:
    return config.root / ".wiredprof"


def last_profile_path(config: ProjectConfig) -> Path:
    """Where `analyze` keeps the last profile, for `plan` and `offload` without arguments."""
    return state_dir(config) / "last-profile.json"


def save_last_profile(profile: Profile, config: ProjectConfig) -> Path:
    path = last_profile_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.save(path)
    return path


def load_last_profile(config: ProjectConfig) -> Profile:
    path = last_profile_path(config)
    if not path.is_file():
        raise UsageError(f"no profile yet in {config.root}: run `wiredprof analyze FLOW.py` first, or give PROFILE")
    return load_profile(path)


def host_capacity(
    config: ProjectConfig, host: str, probe_missing: Callable[[str], None] | None = None
) -> HostCapacity:
    """The planner's view of `host`, from its saved probe (`wiredprof hosts check HOST`).

    With `probe_missing`, a host that has none yet is probed now (and the probe saved);
    `probe_missing(host)` is called first, to say so.
    """
    probe = load_probe(config.probes_dir, host)
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

            return probe_and_save_cluster(cluster, config.probes_dir)
        with RemoteExecutor(resolve_host(host, project=config.root), accept_new=accept_new) as executor:
            result = probe(executor)
    except ConnectError as exc:
        raise HostUnreachableError(f"host {host} is unreachable: {exc}") from None
    save_probe(result, config.probes_dir)
    return result


def capacity_from_probe(probe: ProbeResult) -> HostCapacity:
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
    )


# wiredflow 0.1.0's built-in stage classes: the "function" a profile records for them.
WIREDFLOW_BUILTINS = frozenset({
    "StageGetHTTPConnector", "StagePostHTTPConnector", "DefaultMQTTConnector", "JSONStorageStage",
    "CSVStorageStage", "MongoStorageStage", "MQTTSendStage", "HTTPPUTSendStage", "HTTPPOSTSendStage",
})


def known_stages(flow: str | None, profile: Profile | None) -> tuple[list[StageName], str]:
    """The flow's stages (from the flow file, else from the last profile) and where they came from."""
    if flow is None and profile is not None and Path(profile.flow).is_file():
        flow = profile.flow
    plain = (profile is not None and profile.mode == "plain" and flow is not None
             and Path(profile.flow).resolve() == Path(flow).resolve())
    if flow is not None and not plain:  # a plain flow's stages exist only while it runs: its profile has them
        same = profile is not None and profile.argv and Path(profile.flow).resolve() == Path(flow).resolve()
        found = discover_stages(flow, profile.argv[1:] if same and profile is not None else None)
        if found:
            return found, flow
    if profile is not None:
        wiredflow = profile.mode in ("threads", "processes")
        return [StageName(s.pipeline, s.stage, s.function, builtin=wiredflow and s.function in WIREDFLOW_BUILTINS)
                for s in profile.stages], f"the last profile of {profile.flow}"
    if flow is None:
        raise UsageError("which flow? give FLOW.py, or run `wiredprof analyze FLOW.py` first")
    raise UsageError(f"no stage found in {flow} without running it: run `wiredprof analyze {flow}` first")


def stage_refusals(profile: Profile) -> dict[str, str]:
    """"PIPELINE.STAGE" -> why `wiredprof offload` would refuse it, for every stage it refuses."""
    try:
        stages, _ = known_stages(None, profile)
    except WiredprofError as exc:
        log.info("could not list the flow's stages (%s); using the profile's", exc)
        stages, _ = known_stages(None, replace(profile, flow=""))
    refused = {s.full: offload_refusal(s) for s in stages}
    return {name: why for name, why in refused.items() if why}


def check_offloads_exist(entries: dict[str, OffloadEntry], stages: list[StageName], flow: str) -> None:
    """Every offloaded stage must still be in the flow: a plan naming a vanished stage is refused."""
    if not stages:
        return  # a plain-Python flow: its stages are known only while it runs
    for name in entries:
        try:
            resolve_stage(name, stages, where=flow)
        except UsageError as exc:
            raise UsageError(
                f"the offload plan names {name!r}, which {flow} no longer has ({exc}); "
                f"`wiredprof offload --remove {name}` or fix the flow"
            ) from None


class _HostConnector:
    """Connects to a host of the project (a plain object: it travels to spawned processes by reference)."""

    def __init__(self, project: Any, accept_new: bool) -> None:
        self.project = project
        self.accept_new = accept_new

    def __call__(self, host: str) -> Any:
        from wiredprof.remote import connect

        # Lazy: a pipeline process connects at its first call, and a host that is down
        # there is then retried with backoff by the same executor (its circuit breaker).
        return connect(host, project=self.project, accept_new=self.accept_new, lazy=True)


def offload_runtime(
    config: ProjectConfig, entries: dict[str, OffloadEntry] | None = None, accept_new: bool = False
) -> OffloadRuntime | None:
    """An `OffloadRuntime` for the project's plan, each host connected once now (preflight).

    Connecting up front reports an unknown host, an untrusted key, an auth failure or a
    Python mismatch before the flow starts, in one line.
    """
    entries = config.offloads() if entries is None else entries
    if not entries:
        return None
    runtime = OffloadRuntime(entries, connect=_HostConnector(config.root, accept_new))
    for host in sorted({e.host for e in entries.values()}):
        try:
            runtime.executor(host).connect()
        except ConnectError as exc:
            runtime.close()
            raise HostUnreachableError(f"host {host} is unreachable: {exc}") from None
        except WiredprofError:
            runtime.close()
            raise
    return runtime
