"""The project configuration: `wiredprof.toml`, or `[tool.wiredprof]` in pyproject.toml.

Read with tomllib; written with tomlkit so the user's comments and layout survive. Two
tables matter: `[hosts.NAME]` (where a stage may run), read here, and
`[offload."PIPELINE.STAGE"]` (which stage runs where), read by `wiredprof.offload.entries`
through `data()` / `set_table()`. Nothing secret belongs in it: keys stay in files or the agent.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from wiredprof.errors import ConfigError

__all__ = ["HostEntry", "ProjectConfig", "HOST_NAME_RE", "positive_number"]

log = logging.getLogger(__name__)

CONFIG_NAME = "wiredprof.toml"
PYPROJECT = "pyproject.toml"
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST_KEYS = ("address", "identity", "python", "known_hosts")
# A Dask cluster as a host: its scheduler, and the TLS files Dask's `Security` takes.
_DASK_KEYS = ("dask", "ca_file", "cert", "key")
_HOST_NUMBERS = ("dead_after_s", "max_frame_mb")
_TOP_KEYS = ("hosts", "offload")


@dataclass(frozen=True)
class HostEntry:
    """One `[hosts.NAME]` table."""

    name: str
    address: str
    identity: str | None = None
    python: str | None = None
    known_hosts: str | None = None
    dead_after_s: float | None = None  # a silent link fails calls in flight after this
    max_frame_mb: float | None = None  # the largest message either side accepts
    dask: str | None = None  # scheduler address: the host is a Dask cluster, `address` is ""
    ca_file: str | None = None
    cert: str | None = None
    key: str | None = None

    def to_table(self) -> dict[str, str | float]:
        """The TOML table (only the keys that are set)."""
        return {k: v for k in (*_HOST_KEYS, *_HOST_NUMBERS, *_DASK_KEYS)
                if (v := getattr(self, k)) not in (None, "")}


class ProjectConfig:
    """The configuration file of one project, found from a directory upwards."""

    def __init__(self, path: Path, in_pyproject: bool = False) -> None:
        self.path = path
        self.in_pyproject = in_pyproject

    @property
    def root(self) -> Path:
        """The project directory (where `.wiredprof/` lives: `wiredprof.statedir`)."""
        return self.path.parent

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> ProjectConfig:
        """The nearest wiredprof.toml (or pyproject.toml with [tool.wiredprof]) from `start` up.

        The first directory holding either file is the project; with neither anywhere,
        `start/wiredprof.toml` is used (and created on the first write).
        """
        here = Path(start or Path.cwd()).resolve()
        for directory in (here, *here.parents):
            own = directory / CONFIG_NAME
            if own.exists() and not own.is_file():
                raise ConfigError(f"{own} is not a file (a directory?): remove or rename it")
            if own.is_file():
                return cls(own)
            pyproject = directory / PYPROJECT
            if pyproject.is_file():
                if "wiredprof" in _read(pyproject).get("tool", {}):
                    return cls(pyproject, in_pyproject=True)
                return cls(own)
        return cls(here / CONFIG_NAME)

    # -- reading ------------------------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        """The wiredprof tables as plain dicts ({} when the file does not exist yet)."""
        if not self.path.is_file():
            return {}
        raw = _read(self.path)
        if self.in_pyproject:
            raw = raw.get("tool", {}).get("wiredprof", {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.path}: [tool.wiredprof] must be a table")
        unknown = sorted(set(raw) - set(_TOP_KEYS))
        if unknown:
            raise ConfigError(
                f"{self.path}: unknown table(s) {', '.join(unknown)}; wiredprof reads only "
                f"{', '.join(_TOP_KEYS)} (a misspelling?)"
            )
        return raw

    def hosts(self) -> dict[str, HostEntry]:
        """Every `[hosts.NAME]`, validated."""
        tables = self.data().get("hosts", {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{self.path}: `hosts` must be a table of [hosts.NAME] tables")
        return {name: self._host(name, table) for name, table in tables.items()}

    def _host(self, name: str, table: Any) -> HostEntry:
        where = f"{self.path}: [hosts.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        if "dask" in table:
            return _dask_host(where, name, table)
        allowed = (*_HOST_KEYS, *_HOST_NUMBERS)
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        for key in _HOST_KEYS:
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"{where}: `{key}` must be a string")
        for key in _HOST_NUMBERS:
            if key in table and not positive_number(table[key]):
                raise ConfigError(f"{where}: `{key}` must be a positive number")
        if not table.get("address"):
            raise ConfigError(f"{where}: `address` is required (user@host:port or a Host of ~/.ssh/config)")
        numbers = {k: float(table[k]) if k in table else None for k in _HOST_NUMBERS}
        return HostEntry(
            name, table["address"], table.get("identity"), table.get("python"), table.get("known_hosts"),
            dead_after_s=numbers["dead_after_s"], max_frame_mb=numbers["max_frame_mb"],
        )

    # -- writing (tomlkit keeps the user's comments) -----------------------------------------
    def add_host(self, entry: HostEntry, replace: bool = False) -> None:
        """Write `[hosts.NAME]`; refuses to overwrite an existing one unless `replace`."""
        if not HOST_NAME_RE.match(entry.name):
            raise ConfigError(f"host name {entry.name!r} must be letters, digits, '_', '.' or '-'")
        doc, section = self._edit()
        hosts = _subtable(section, "hosts")
        if entry.name in hosts and not replace:
            raise ConfigError(
                f"host {entry.name!r} is already in {self.path}; remove it first or use --replace"
            )
        hosts[entry.name] = _table(entry.to_table())
        self._write(doc)

    def set_host_python(self, name: str, python: str) -> None:
        """Set only `python` of `[hosts.NAME]` (an ssh_config alias gets a table naming itself)."""
        doc, section = self._edit()
        hosts = _subtable(section, "hosts")
        if name not in hosts:
            hosts[name] = tomlkit.table()
            hosts[name]["address"] = name
        hosts[name]["python"] = python
        self._write(doc)

    def remove_host(self, name: str) -> bool:
        """Drop `[hosts.NAME]`; False when it was not there."""
        return self.remove_table("hosts", name)

    def set_table(self, kind: str, name: str, values: dict[str, Any]) -> None:
        """Write (or replace) the table `[KIND."NAME"]` with `values`, in their order."""
        doc, section = self._edit()
        _subtable(section, kind)[name] = _table(values)
        self._write(doc)

    def remove_table(self, kind: str, name: str) -> bool:
        """Drop `[KIND."NAME"]`; False when it was not there."""
        if not self.path.is_file():
            return False
        doc, section = self._edit()
        group = section.get(kind)
        if group is None or name not in group:
            return False
        del group[name]
        self._write(doc)
        return True

    def _edit(self) -> tuple[tomlkit.TOMLDocument, Any]:
        try:
            text = self.path.read_text(encoding="utf-8") if self.path.is_file() else ""
            doc = tomlkit.parse(text) if text else tomlkit.document()
        except tomlkit.exceptions.ParseError as exc:
            raise ConfigError(f"{self.path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{self.path}: not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if not self.in_pyproject:
            return doc, doc
        tool = _subtable(doc, "tool")
        return doc, _subtable(tool, "wiredprof")

    def _write(self, doc: tomlkit.TOMLDocument) -> None:
        """Replace the file atomically, through a symlink, keeping its mode and owner."""
        target = Path(os.path.realpath(self.path))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            old = target.stat() if target.exists() else None
            fd, tmp = tempfile.mkstemp(prefix=".wiredprof-", dir=target.parent)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(tomlkit.dumps(doc))
                f.flush()
                os.fsync(f.fileno())
            if old is not None:
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
                if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.chown(tmp, old.st_uid, old.st_gid)
                    except PermissionError:
                        log.warning("%s: cannot keep its owner %d:%d", self.path, old.st_uid, old.st_gid)
            else:
                os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        log.info("wrote %s", target)


def positive_number(value: Any) -> bool:
    """A finite number above 0 (not a bool): what every `*_s` / `*_mb` key must be."""
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _dask_host(where: str, name: str, table: dict[str, Any]) -> HostEntry:
    """A `[hosts.NAME]` table with `dask = "tcp://SCHEDULER:PORT"`."""
    unknown = sorted(set(table) - set(_DASK_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} for a Dask host; allowed: {', '.join(_DASK_KEYS)}"
        )
    for key in _DASK_KEYS:
        if key in table and (not isinstance(table[key], str) or not table[key]):
            raise ConfigError(f"{where}: `{key}` must be a non-empty string")
    if ("cert" in table) != ("key" in table):
        raise ConfigError(f"{where}: give both `cert` and `key` (the client's TLS certificate and its key)")
    return HostEntry(
        name, "", dask=table["dask"], ca_file=table.get("ca_file"), cert=table.get("cert"), key=table.get("key")
    )


def _table(values: dict[str, Any]) -> Any:
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    return table


def _subtable(parent: Any, key: str) -> Any:
    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=True)
    return parent[key]


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
