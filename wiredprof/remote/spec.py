"""`HostSpec`: everything needed to reach one host, resolved once (fabric-style), no I/O."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["HostSpec", "ssh_dir", "parse_address", "SYSTEM_KNOWN_HOSTS", "default_max_frame"]

SYSTEM_KNOWN_HOSTS = (Path("/etc/ssh/ssh_known_hosts"), Path("/etc/ssh/ssh_known_hosts2"))
_MAX_FRAME_CAP = 1 << 30


def default_max_frame() -> int:
    """The largest frame either side accepts by default: 1 GiB, or an eighth of this host's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return _MAX_FRAME_CAP
    return max(16 << 20, min(_MAX_FRAME_CAP, memory // 8))


def ssh_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The user's ssh directory: the argument, else $WIREDPROF_SSH_DIR, else ~/.ssh."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("WIREDPROF_SSH_DIR")
    return Path(env).expanduser() if env else Path.home() / ".ssh"


def parse_address(address: str) -> tuple[str | None, str, int | None]:
    """Split `user@host:port` (each part but host optional; `[v6]:port` accepted)."""
    user: str | None = None
    rest = address.strip()
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
    port: int | None = None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, port_text = rest.split(":")
        port = int(port_text)
    else:
        host = rest
    if not host:
        raise ValueError(f"no host name in address {address!r}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port out of range in address {address!r}")
    return user or None, host, port


@dataclass(frozen=True)
class HostSpec:
    """How to reach host `name`: resolved from the inventory, ~/.ssh/config, or given directly."""

    name: str
    hostname: str
    port: int = 22
    user: str = field(default_factory=getpass.getuser)
    identity_files: tuple[Path, ...] = ()
    python: str = "python3"
    known_hosts: tuple[Path, ...] = ()
    system_known_hosts: tuple[Path, ...] = SYSTEM_KNOWN_HOSTS
    allow_agent: bool = True
    look_for_keys: bool = True
    ssh_dir: Path = field(default_factory=ssh_dir)
    proxy_jump: HostSpec | None = None
    connect_timeout_s: float = 15.0
    dead_after_s: float = 15.0  # a link silent this long fails the calls in flight
    max_frame_bytes: int = field(default_factory=default_max_frame)

    @property
    def user_known_hosts(self) -> tuple[Path, ...]:
        """The user's known_hosts files; the first is where an accepted key is recorded."""
        return self.known_hosts or (self.ssh_dir / "known_hosts",)

    @property
    def known_hosts_name(self) -> str:
        """The name this host has in known_hosts (`host`, or `[host]:port` off port 22)."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    @property
    def address(self) -> str:
        """`user@host:port`, for messages and tables."""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user}@{host}:{self.port}"

    def with_(self, **changes: object) -> HostSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def direct(
        cls,
        address: str,
        port: int | None = None,
        user: str | None = None,
        identity: str | os.PathLike[str] | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        python: str = "python3",
        name: str | None = None,
        allow_agent: bool = True,
    ) -> HostSpec:
        """A spec from explicit values (tests, the demo), without the inventory or ssh_config."""
        a_user, host, a_port = parse_address(address)
        return cls(
            name=name or host,
            hostname=host,
            port=port or a_port or 22,
            user=user or a_user or getpass.getuser(),
            identity_files=(Path(identity).expanduser(),) if identity else (),
            python=python,
            known_hosts=(Path(known_hosts).expanduser(),) if known_hosts else (),
            allow_agent=allow_agent,
            look_for_keys=identity is None,
        )
