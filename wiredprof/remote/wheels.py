"""Wheels for a host that reaches no package index, made on host A.

For each distribution, in order: rebuild the wheel from A's installed files when the tag it
was installed with is one B supports (pure-Python ones always; the files are exactly A's), else
`pip download` it for B's platform and Python with A's pip and A's pip configuration. A
distribution with neither is named with B's platform.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import io
import logging
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

from wiredprof.errors import UsageError
from wiredprof.remote.requirements import Distribution

__all__ = ["PlatformTags", "NoWheelError", "platform_tags", "wheel_for", "rebuild_wheel", "installed_tags"]

log = logging.getLogger(__name__)

_SKIP_IN_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_DOWNLOAD_TIMEOUT_S = 600.0
# glibc's first manylinux version per architecture (PEP 600), and the legacy aliases.
_FIRST_GLIBC_MINOR = {"x86_64": 5, "i686": 5}
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


class NoWheelError(UsageError):
    """No wheel of a distribution exists (here or on A's index) for B's platform."""


@dataclass(frozen=True)
class PlatformTags:
    """What B's Python accepts: its version, ABI and platform tags, most specific first."""

    python: tuple[int, int]
    abi: str
    platforms: tuple[str, ...]

    @property
    def label(self) -> str:
        """`cp311, manylinux_2_36_x86_64` for messages."""
        return f"cp{self.python[0]}{self.python[1]}, {self.platforms[0] if self.platforms else 'unknown platform'}"

    def tags(self) -> list[Tag]:
        """Every tag B's Python supports, like `packaging.tags.sys_tags` would say there."""
        plats = list(self.platforms)
        return list(cpython_tags(self.python, [self.abi], plats)) + list(
            compatible_tags(self.python, f"cp{self.python[0]}{self.python[1]}", plats)
        )


def platform_tags(python: tuple[int, int], sysconfig_platform: str, machine: str, glibc: str | None) -> PlatformTags:
    """B's tags from what its worker reported (`sysconfig.get_platform()`, machine, glibc version)."""
    abi = f"cp{python[0]}{python[1]}"
    base = re.sub(r"[-.]", "_", sysconfig_platform)
    platforms: list[str] = []
    if sysconfig_platform.startswith("linux") and glibc:
        major, minor = (int(x) for x in glibc.split(".")[:2])
        arch = machine
        for m in range(minor, _FIRST_GLIBC_MINOR.get(arch, 17) - 1, -1):
            platforms.append(f"manylinux_{major}_{m}_{arch}")
            if m in _LEGACY and (m == 17 or arch in ("x86_64", "i686")):
                platforms.append(f"{_LEGACY[m]}_{arch}")
    platforms.append(base)
    return PlatformTags(python, abi, tuple(platforms))


def installed_tags(dist: metadata.Distribution) -> list[Tag]:
    """The tags in the WHEEL file of an installed distribution ([] when not installed from a wheel)."""
    text = dist.read_text("WHEEL") or ""
    tags: list[Tag] = []
    for line in text.splitlines():
        if line.startswith("Tag:"):
            tags += list(parse_tag(line.split(":", 1)[1].strip()))
    return tags


def _escape_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)


def _escape_version(version: str) -> str:
    return version.replace("-", "_")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rebuild_wheel(dist: metadata.Distribution, tag: Tag, dest: Path) -> Path:
    """A wheel of `dist` made from its installed files (RECORD), tagged `tag`, written into `dest`.

    Files installed outside the package directory (scripts, data) and byte code are left out:
    pip re-creates console scripts from entry_points.txt, and compiles on install.
    """
    name, version = dist.metadata["Name"], dist.version
    files = list(dist.files or ())
    info_dirs = {f.parts[0] for f in files if f.parts and f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise FileNotFoundError(f"{name} {version}: its RECORD names {len(info_dirs)} .dist-info directories")
    info_dir = info_dirs.pop()
    path = dest / f"{_escape_name(name)}-{_escape_version(version)}-{tag}.whl"
    record_rows: list[list[str]] = []
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as zf:
        for file in files:
            rel = file.as_posix()
            if rel.startswith("..") or "__pycache__" in file.parts or rel.endswith(".pyc"):
                continue
            if file.parts[0] == info_dir and len(file.parts) == 2 and file.name in _SKIP_IN_DIST_INFO | {"WHEEL"}:
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            zf.writestr(rel, data)
            record_rows.append([rel, _record_hash(data), str(len(data))])
        wheel = f"Wheel-Version: 1.0\nGenerator: wiredprof (rebuilt)\nRoot-Is-Purelib: " \
                f"{'true' if tag.abi == 'none' and tag.platform == 'any' else 'false'}\nTag: {tag}\n"
        zf.writestr(f"{info_dir}/WHEEL", wheel)
        record_rows.append([f"{info_dir}/WHEEL", _record_hash(wheel.encode()), str(len(wheel))])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(record_rows + [[f"{info_dir}/RECORD", "", ""]])
        zf.writestr(f"{info_dir}/RECORD", out.getvalue())
    tmp.replace(path)
    return path


def _download(d: Distribution, tags: PlatformTags, dest: Path) -> Path | None:
    """`pip download` of exactly `d` for B's platform, with A's pip and configuration."""
    before = set(dest.iterdir())
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input",
           "--python-version", f"{tags.python[0]}.{tags.python[1]}", "--implementation", "cp",
           "--abi", tags.abi, "--abi", "abi3", "--abi", "none", "-d", str(dest)]
    for plat in tags.platforms:
        cmd += ["--platform", plat]
    cmd.append(d.pin)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, env={**os.environ, "PIP_NO_INPUT": "1"})
    except subprocess.TimeoutExpired:
        log.warning("pip download %s timed out", d.pin)
        return None
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("ERROR")] or ["no output"]
        log.info("pip download %s for %s: %s", d.pin, tags.label, lines[-1])
        return None
    new = [p for p in set(dest.iterdir()) - before if p.suffix == ".whl"]
    return new[0] if new else None


def wheel_for(d: Distribution, tags: PlatformTags, dest: Path) -> tuple[Path, str]:
    """A wheel of `d` that B can install, and how it was made (`rebuilt` or `downloaded`)."""
    supported = set(tags.tags())
    try:
        dist = metadata.distribution(d.name)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None and dist.version == d.version:
        usable = [t for t in installed_tags(dist) if t in supported]
        if usable:
            try:
                return rebuild_wheel(dist, usable[0], dest), "rebuilt"
            except OSError as exc:
                log.info("cannot rebuild %s from its installed files: %s", d.pin, exc)
    got = _download(d, tags, dest)
    if got is None:
        have = ", ".join(str(t) for t in installed_tags(dist)) if dist is not None else "none"
        raise NoWheelError(
            f"no wheel of {d.pin} for B's platform ({tags.label}): the one installed here is for "
            f"{have or 'no known tag'} and pip found none for B; build one for that platform "
            f"(`pip wheel {d.pin}` on a machine like B) or install it on B by hand"
        )
    return got, "downloaded"
