"""The offload plan of a project: `[offload."PIPELINE.STAGE"]` tables, checked and applied.

Where things live: the plan in the project's configuration (wiredprof.toml or
`[tool.wiredprof]`), host probes and the last profile under `.wiredprof/` beside it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from wiredprof.config import OffloadEntry, ProjectConfig
from wiredprof.errors import ConnectError, UsageError, WiredprofError
from wiredprof.offload import OffloadRuntime
from wiredprof.planner import HostCapacity
from wiredprof.profile import Profile, load_profile
from wiredprof.remote.probe import ProbeResult, load_probe
from wiredprof.stages import StageName, resolve_stage

__all__ = [
    "last_profile_path",
    "save_last_profile",
    "load_last_profile",
    "host_capacity",
    "check_offloads_exist",
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


def host_capacity(config: ProjectConfig, host: str) -> HostCapacity:
    """The planner's view of `host`, from its saved probe (`wiredprof hosts check HOST`)."""
    probe = load_probe(config.root / ".wiredprof" / "hosts", host)
    if probe is None:
        raise UsageError(f"host {host!r} has not been measured yet: run `wiredprof hosts check {host}` first")
    return capacity_from_probe(probe)


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
    )


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

        return connect(host, project=self.project, accept_new=self.accept_new)


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
            runtime.executor(host)
        except ConnectError as exc:
            runtime.close()
            raise HostUnreachableError(f"host {host} is unreachable: {exc}") from None
        except WiredprofError:
            runtime.close()
            raise
    return runtime
