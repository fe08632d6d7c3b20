"""Host names to `HostSpec`s: the project's inventory first, then `Host`s of ~/.ssh/config.

Like fabric's `Connection`: the inventory's `address` (user@host:port) is applied over
what `~/.ssh/config` says for that host name (HostName, User, Port, IdentityFile,
UserKnownHostsFile, ProxyJump), so an inventory entry may be just an ssh_config alias.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import ConfigError, UnknownHostError, UsageError
from wiredprof.remote.spec import HostSpec, parse_address, ssh_dir as default_ssh_dir

__all__ = ["HostListing", "resolve_host", "require_host", "list_hosts", "load_ssh_config", "ssh_config_aliases"]

log = logging.getLogger(__name__)

_MAX_JUMPS = 4


@dataclass(frozen=True)
class HostListing:
    """One row of `wiredprof hosts list`: a host a user can name, and where it is defined.

    Not an SSH known_hosts entry (host keys): those are `HostSpec.user_known_hosts`.
    """

    name: str
    source: str
    address: str
    python: str


def load_ssh_config(ssh_dir: Path) -> paramiko.SSHConfig:
    """`ssh_dir/config` parsed by paramiko (empty when there is none)."""
    path = ssh_dir / "config"
    if not path.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from None


def ssh_config_aliases(config: paramiko.SSHConfig) -> list[str]:
    """The concrete `Host` names of an ssh_config (patterns and negations left out)."""
    return sorted(h for h in config.get_hostnames() if not any(c in h for c in "*?!"))


def _spec_from(
    name: str,
    address: str,
    ssh_config: paramiko.SSHConfig,
    ssh_dir: Path,
    *,
    identity: str | None = None,
    python: str | None = None,
    known_hosts_file: str | None = None,
    base: Path | None = None,
    depth: int = 0,
) -> HostSpec:
    try:
        user, host, port = parse_address(address)
    except ValueError as exc:
        raise ConfigError(f"host {name}: {exc}") from None
    found = ssh_config.lookup(host)
    identity_files: list[Path] = []
    if identity:
        path = Path(identity).expanduser()
        identity_files.append(path if path.is_absolute() or base is None else base / path)
    identity_files += [Path(p).expanduser() for p in found.get("identityfile", [])]
    known: list[Path] = []
    if known_hosts_file:
        path = Path(known_hosts_file).expanduser()
        known.append(path if path.is_absolute() or base is None else base / path)
    elif "userknownhostsfile" in found:
        known += [Path(p).expanduser() for p in str(found["userknownhostsfile"]).split()]
    jump = None
    proxy_jump = str(found.get("proxyjump", "none"))
    if proxy_jump.lower() != "none":
        if depth >= _MAX_JUMPS:
            raise ConfigError(f"host {name}: ProxyJump chain longer than {_MAX_JUMPS} hops")
        hops = [h.strip() for h in proxy_jump.split(",") if h.strip()]
        jump = _chain(hops, ssh_config, ssh_dir, depth + 1)
    return HostSpec(
        name=name,
        hostname=str(found.get("hostname", host)),
        port=port or int(found.get("port", 22)),
        user=user or str(found.get("user") or getpass.getuser()),
        identity_files=tuple(identity_files),
        python=python or "python3",
        known_hosts=tuple(known),
        look_for_keys=not identity_files,
        ssh_dir=ssh_dir,
        proxy_jump=jump,
    )


def _link_limits(entry: HostEntry) -> dict[str, object]:
    """The inventory's `dead_after_s` / `max_frame_mb` as HostSpec fields (only those set)."""
    limits: dict[str, object] = {}
    if entry.dead_after_s is not None:
        limits["dead_after_s"] = entry.dead_after_s
    if entry.max_frame_mb is not None:
        limits["max_frame_bytes"] = int(entry.max_frame_mb * (1 << 20))
    return limits


def _chain(hops: list[str], ssh_config: paramiko.SSHConfig, ssh_dir: Path, depth: int) -> HostSpec:
    # "a,b" means: reach b through a, then the target through b.
    previous = _chain(hops[:-1], ssh_config, ssh_dir, depth + 1) if len(hops) > 1 else None
    last = hops[-1]
    spec = _spec_from(last, last, ssh_config, ssh_dir, depth=depth)
    if previous is not None:
        spec = spec.with_(proxy_jump=previous)
    return spec


def resolve_host(
    name: str,
    project: str | os.PathLike[str] | None = None,
    ssh_dir: str | os.PathLike[str] | None = None,
) -> HostSpec:
    """The `HostSpec` of `name`, or `UnknownHostError` listing the hosts that do exist."""
    config = ProjectConfig.find(project)
    directory = default_ssh_dir(ssh_dir)
    ssh_config = load_ssh_config(directory)
    entries = config.hosts()
    entry: HostEntry | None = entries.get(name)
    if entry is not None and entry.dask:
        raise UsageError(f"host {name} is a Dask cluster ({entry.dask}), not an SSH host")
    if entry is not None:
        return _spec_from(
            name,
            entry.address,
            ssh_config,
            directory,
            identity=entry.identity,
            python=entry.python,
            known_hosts_file=entry.known_hosts,
            base=config.root,
        ).with_(**_link_limits(entry))
    if name in ssh_config_aliases(ssh_config):
        return _spec_from(name, name, ssh_config, directory)
    raise UnknownHostError(name, sorted(set(entries) | set(ssh_config_aliases(ssh_config))))


def require_host(name: str, project: str | os.PathLike[str] | None = None) -> None:
    """`UnknownHostError` (listing the known hosts) unless `name` is an SSH or a Dask host."""
    if not any(h.name == name for h in list_hosts(project)):
        resolve_host(name, project=project)


def list_hosts(
    project: str | os.PathLike[str] | None = None, ssh_dir: str | os.PathLike[str] | None = None
) -> list[HostListing]:
    """Every host a user can name: the inventory's, then ssh_config's not already listed."""
    config = ProjectConfig.find(project)
    directory = default_ssh_dir(ssh_dir)
    ssh_config = load_ssh_config(directory)
    listed: list[HostListing] = []
    for name, entry in config.hosts().items():
        listed.append(HostListing(name, config.path.name, entry.dask or entry.address, entry.python or "python3"))
    seen = {h.name for h in listed}
    for alias in ssh_config_aliases(ssh_config):
        if alias not in seen:
            spec = _spec_from(alias, alias, ssh_config, directory)
            listed.append(HostListing(alias, str(directory / "config"), spec.address, spec.python))
    return listed
