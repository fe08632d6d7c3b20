"""What host B's Python is and has, asked of its worker, and compared with what a stage needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.requirements import Distribution, StageNeeds, canonical_name
from wiredprof.remote.wheels import PlatformTags, platform_tags

__all__ = ["HostInventory", "Comparison", "inspect_host", "inventory_from_facts", "compare", "MARKER"]

MARKER = "wiredprof-env.json"  # in a ready environment: its pins, Python, how it was built


# -- run on B by the worker (stdlib only) -------------------------------------------------


def _host_facts() -> dict[str, Any]:
    import importlib.metadata
    import importlib.util
    import json as json_
    import os as os_
    import platform
    import sys
    import sysconfig

    cache = os_.environ.get("XDG_CACHE_HOME") or os_.path.join(os_.path.expanduser("~"), ".cache")
    root = os_.path.join(cache, "wiredprof", "envs")
    probe = root
    while not os_.path.isdir(probe) and os_.path.dirname(probe) != probe:
        probe = os_.path.dirname(probe)
    st = os_.statvfs(probe)
    dists = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name not in dists:
            dists[name] = dist.version
    ready = {}
    if os_.path.isdir(root):
        for entry in os_.listdir(root):
            try:
                with open(os_.path.join(root, entry, MARKER)) as f:
                    ready[entry] = json_.load(f)
            except (OSError, ValueError):
                pass
    glibc = None
    try:
        glibc = (os_.confstr("CS_GNU_LIBC_VERSION") or "").split()[-1]
    except (AttributeError, ValueError, OSError, IndexError):
        pass
    return {
        "python": list(sys.version_info[:3]),
        "executable": sys.executable,
        "base_executable": os_.path.realpath(getattr(sys, "_base_executable", sys.executable)),
        "in_venv": sys.prefix != sys.base_prefix,
        "platform": sysconfig.get_platform(),
        "machine": platform.machine(),
        "glibc": glibc,
        "distributions": dists,
        "has_venv": importlib.util.find_spec("venv") is not None,
        "has_ensurepip": importlib.util.find_spec("ensurepip") is not None,
        "envs_dir": root,
        "free_bytes": st.f_bavail * st.f_frsize,
        "ready_envs": ready,
    }


# -- A's side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostInventory:
    """What B's configured Python is and has."""

    host: str
    python: tuple[int, int, int]
    executable: str
    base_executable: str
    platform: str
    machine: str
    glibc: str | None
    distributions: dict[str, str]
    has_venv: bool
    has_ensurepip: bool
    envs_dir: str
    free_bytes: int
    ready_envs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def python_version(self) -> str:
        return ".".join(map(str, self.python))

    @property
    def tags(self) -> PlatformTags:
        """The wheel tags B's Python accepts."""
        return platform_tags((self.python[0], self.python[1]), self.platform, self.machine, self.glibc)

    def version_of(self, name: str) -> str | None:
        """B's version of distribution `name`, or None."""
        key = canonical_name(name)
        for have, version in self.distributions.items():
            if canonical_name(have) == key:
                return version
        return None


def inspect_host(executor: RemoteExecutor) -> HostInventory:
    """Ask B's worker what its Python is and has (one call)."""
    return inventory_from_facts(executor.host, executor.call(_host_facts))


def inventory_from_facts(host: str, facts: dict[str, Any]) -> HostInventory:
    """The `HostInventory` of what `_host_facts` returned on `host`."""
    return HostInventory(
        host=host,
        python=tuple(facts["python"]),  # type: ignore[arg-type]
        executable=facts["executable"],
        base_executable=facts["base_executable"],
        platform=facts["platform"],
        machine=facts["machine"],
        glibc=facts["glibc"],
        distributions=dict(facts["distributions"]),
        has_venv=bool(facts["has_venv"]),
        has_ensurepip=bool(facts["has_ensurepip"]),
        envs_dir=facts["envs_dir"],
        free_bytes=int(facts["free_bytes"]),
        ready_envs=dict(facts["ready_envs"]),
    )


@dataclass(frozen=True)
class Comparison:
    """Per distribution: A's version, B's version (None: missing), and the verdict."""

    rows: tuple[tuple[Distribution, str | None], ...]
    inventory: HostInventory

    @staticmethod
    def state(here: str, there: str | None) -> str:
        return "missing on B" if there is None else ("same" if there == here else "other version on B")

    @property
    def missing(self) -> list[Distribution]:
        return [d for d, there in self.rows if there is None]

    @property
    def different(self) -> list[tuple[Distribution, str]]:
        return [(d, there) for d, there in self.rows if there is not None and there != d.version]

    @property
    def ok(self) -> bool:
        """True when B has every distribution at A's version."""
        return not self.missing and not self.different

    def table_rows(self) -> list[list[str]]:
        """[distribution, here, on B, state] rows for tabulate."""
        return [
            [d.name + ("" if d.direct else " (dependency)"), d.version, there or "-", self.state(d.version, there)]
            for d, there in self.rows
        ]


def compare(needs: StageNeeds, inventory: HostInventory) -> Comparison:
    """Each needed distribution against what B's Python has."""
    return Comparison(tuple((d, inventory.version_of(d.name)) for d in needs.distributions), inventory)
