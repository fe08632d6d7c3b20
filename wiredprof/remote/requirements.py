"""What a stage needs on host B: the third-party distributions its callable refers to, at A's versions.

The callable is pickled as it would be shipped (nothing is sent) while the modules the pickle
refers to by name are noted, with the modules its by-value functions import in their bodies.
Those go to the distributions that own them (`importlib.metadata.packages_distributions`), then
to what those distributions require, each at the version installed here. The standard library,
wiredprof, cloudpickle (the worker brings it) and the user's own code (shipped by value) need
nothing on B.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from packaging.requirements import InvalidRequirement, Requirement

from wiredprof.errors import UsageError
from wiredprof.remote.serialize import LocalObjects, dump_function, ship_by_value

__all__ = [
    "Distribution",
    "StageNeeds",
    "UnknownDistributionError",
    "canonical_name",
    "referenced_modules",
    "needs_of_modules",
    "stage_needs",
    "merge_needs",
]

log = logging.getLogger(__name__)

# The worker ships these itself, or they are wiredprof's own code (shipped by value).
_BROUGHT_ALONG = frozenset({"cloudpickle", "wiredprof", "__main__", "builtins", ""})
_MAX_CLOSURE = 500


class UnknownDistributionError(UsageError):
    """A module the stage needs belongs to no installed distribution: its version is unknown."""


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (`PyYAML` -> `pyyaml`, `typing_extensions` -> `typing-extensions`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Distribution:
    """One distribution B must have: its name and A's version; `direct` when the stage imports it."""

    name: str
    version: str
    direct: bool = True
    modules: tuple[str, ...] = ()

    @property
    def pin(self) -> str:
        """`name==version`, what pip is asked for."""
        return f"{self.name}=={self.version}"

    @property
    def key(self) -> str:
        return canonical_name(self.name)


@dataclass(frozen=True)
class StageNeeds:
    """The distributions a stage (or several) needs on B, and modules no distribution owns."""

    distributions: tuple[Distribution, ...] = ()
    unknown_modules: tuple[str, ...] = field(default=())

    @property
    def pins(self) -> list[str]:
        """Sorted `name==version` lines."""
        return sorted(d.pin for d in self.distributions)

    def to_json(self) -> dict[str, Any]:
        """Plain data (travels from the discovery child process)."""
        return {
            "distributions": [[d.name, d.version, d.direct, list(d.modules)] for d in self.distributions],
            "unknown_modules": list(self.unknown_modules),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageNeeds:
        """The inverse of `to_json`."""
        return cls(
            tuple(Distribution(n, v, bool(d), tuple(m)) for n, v, d, m in data.get("distributions", [])),
            tuple(data.get("unknown_modules", [])),
        )

    def check_known(self, what: str) -> None:
        """Refuse (exit 2) when a module the stage needs has no distribution, hence no version."""
        if self.unknown_modules:
            names = ", ".join(self.unknown_modules)
            raise UnknownDistributionError(
                f"{what} needs {names}, which no installed distribution owns here, so its version is "
                f"unknown and B cannot be given the same: install it with pip here "
                f"(or move it into your project so it is shipped by value)"
            )


def merge_needs(needs: Iterable[StageNeeds]) -> StageNeeds:
    """The union of several stages' needs (one version per distribution: A has only one)."""
    by_key: dict[str, Distribution] = {}
    unknown: set[str] = set()
    for one in needs:
        unknown.update(one.unknown_modules)
        for d in one.distributions:
            old = by_key.get(d.key)
            if old is None:
                by_key[d.key] = d
            else:
                by_key[d.key] = Distribution(
                    old.name, old.version, old.direct or d.direct, tuple(sorted(set(old.modules) | set(d.modules)))
                )
    return StageNeeds(tuple(sorted(by_key.values(), key=lambda d: d.key)), tuple(sorted(unknown)))


def referenced_modules(fn: Callable[..., Any]) -> set[str]:
    """Modules B must import to load `fn` as shipped, plus those its by-value code imports in bodies."""
    record: set[str] = set()
    dump_function(fn, LocalObjects(), record=record)
    return {name.removeprefix("import:") for name in record if name.removeprefix("import:")}


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


def _module_file(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _needs_nothing(name: str) -> bool:
    top = name.split(".")[0]
    if top in _BROUGHT_ALONG or _is_stdlib(top):
        return True
    module = sys.modules.get(top)
    return module is not None and ship_by_value(module)


def _owner(module: str, owners: list[str]) -> list[str]:
    """The distribution(s) owning `module` when a top-level name is shared (namespace packages)."""
    if len(owners) <= 1:
        return owners
    path = _module_file(module)
    if path is None:
        return owners
    real = os.path.realpath(path)
    found = []
    for name in owners:
        dist = metadata.distribution(name)
        if any(os.path.realpath(str(dist.locate_file(f))) == real for f in dist.files or ()):
            found.append(name)
    return found or owners


def _requires(name: str) -> list[str]:
    """Names of the installed distributions `name` requires (markers evaluated here, no extras)."""
    names = []
    for line in metadata.requires(name) or ():
        try:
            req = Requirement(line)
        except InvalidRequirement:
            log.debug("%s: cannot parse requirement %r", name, line)
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(req.name)
    return names


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def needs_of_modules(modules: Iterable[str]) -> StageNeeds:
    """The distributions (and what they require) behind `modules`, at the versions installed here."""
    owners_of = metadata.packages_distributions()
    direct: dict[str, set[str]] = {}
    unknown: set[str] = set()
    for module in sorted(set(modules)):
        if _needs_nothing(module):
            continue
        top = module.split(".")[0]
        owners = owners_of.get(top)
        if not owners:
            path = _module_file(top)
            if path is not None and ("site-packages" in path or "dist-packages" in path):
                unknown.add(top)  # installed, but no distribution says so: its version is unknown
            else:
                log.debug("module %s: not importable here, or the user's own code: left out", module)
            continue
        for owner in _owner(module, owners):
            direct.setdefault(owner, set()).add(top)
    found: dict[str, Distribution] = {}
    queue = [(name, True, tuple(sorted(mods))) for name, mods in direct.items()]
    while queue and len(found) < _MAX_CLOSURE:
        name, is_direct, mods = queue.pop(0)
        version = _version(name)
        key = canonical_name(name)
        if version is None or key in found or key in _BROUGHT_ALONG:
            continue
        dist_name = metadata.metadata(name)["Name"] or name
        found[key] = Distribution(dist_name, version, is_direct, mods)
        queue += [(req, False, ()) for req in _requires(name)]
    return StageNeeds(tuple(sorted(found.values(), key=lambda d: d.key)), tuple(sorted(unknown)))


def stage_needs(fn: Callable[..., Any]) -> StageNeeds:
    """What `fn` needs on another host: third-party distributions at A's versions."""
    return needs_of_modules(referenced_modules(fn))
