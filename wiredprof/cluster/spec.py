"""`DaskSpec`: how to reach one Dask cluster (its scheduler and TLS files), resolved, no I/O."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import ConfigError, UsageError

__all__ = ["DaskSpec", "DaskMissingError", "SCHEMES", "check_scheduler_address", "dask_host", "import_distributed"]

SCHEMES = ("tcp", "tls", "ws", "wss")
EXTRA_HINT = "pip install 'wiredprof[dask]'"


class DaskMissingError(UsageError):
    """A Dask host is used, but dask.distributed is not installed here."""


def import_distributed(host: str) -> ModuleType:
    """`distributed`, or one line saying host `host` needs the `dask` extra."""
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise DaskMissingError(
            f"host {host} is a Dask cluster, but dask.distributed cannot be imported here ({exc}): "
            f"{EXTRA_HINT}"
        ) from None


def check_scheduler_address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `tcp://HOST:PORT`; `ValueError` with what is wrong."""
    if "://" not in address:
        raise ValueError(f"{address!r} is not a scheduler address: write it as tcp://HOST:PORT")
    parts = urlsplit(address)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{address!r}: scheme must be one of {', '.join(SCHEMES)}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{address!r}: port out of range") from None
    if not parts.hostname or port is None:
        raise ValueError(f"{address!r}: give the scheduler's host and port, as in tcp://HOST:8786")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{address!r}: nothing may follow HOST:PORT")
    return parts.scheme, parts.hostname, port


@dataclass(frozen=True)
class DaskSpec:
    """Host `name` is the Dask cluster whose scheduler is at `scheduler`."""

    name: str
    scheduler: str
    ca_file: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    connect_timeout_s: float = 15.0

    @property
    def address(self) -> str:
        """The scheduler address, for messages and tables."""
        return self.scheduler

    @property
    def tls(self) -> bool:
        """True when the link to the scheduler is TLS (files given, or a tls:// address)."""
        return self.scheduler.startswith(("tls://", "wss://")) or self.ca_file is not None

    def security(self) -> Any:
        """A `distributed.security.Security` for the client (None without TLS files)."""
        if not (self.ca_file or self.cert):
            if self.scheduler.startswith(("tls://", "wss://")):
                raise ConfigError(f"host {self.name}: {self.scheduler} is TLS: give `ca_file`, `cert` and `key` "
                                  f"in [hosts.{self.name}] (`wiredprof hosts add {self.name} --dask ... --ca-file "
                                  "... --cert ... --key ... --replace`)")
            return None
        for label, path in (("ca_file", self.ca_file), ("cert", self.cert), ("key", self.key)):
            if path is not None and not path.is_file():
                raise ConfigError(f"host {self.name}: `{label}` {path} is not a file")
        import_distributed(self.name)
        security: Any = importlib.import_module("distributed.security").Security
        return security(
            tls_ca_file=str(self.ca_file) if self.ca_file else None,
            tls_client_cert=str(self.cert) if self.cert else None,
            tls_client_key=str(self.key) if self.key else None,
            require_encryption=True,
        )

    @classmethod
    def from_entry(cls, entry: HostEntry, base: Path | None = None) -> DaskSpec:
        """The spec of an inventory entry with `dask = ...`; relative files are from `base`."""
        if not entry.dask:
            raise ValueError(f"host {entry.name} is not a Dask host")
        try:
            check_scheduler_address(entry.dask)
        except ValueError as exc:
            raise ConfigError(f"host {entry.name}: `dask`: {exc}") from None

        def path(value: str | None) -> Path | None:
            if value is None:
                return None
            p = Path(value).expanduser()
            return p if p.is_absolute() or base is None else base / p

        return cls(entry.name, entry.dask, path(entry.ca_file), path(entry.cert), path(entry.key))


def dask_host(name: str, project: str | os.PathLike[str] | None = None) -> DaskSpec | None:
    """The `DaskSpec` of inventory host `name`, or None when it is not a Dask host."""
    config = ProjectConfig.find(project)
    entry = config.hosts().get(name)
    if entry is None or not entry.dask:
        return None
    return DaskSpec.from_entry(entry, config.root)
