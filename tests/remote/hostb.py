"""Helpers for provisioning tests: a fresh host B (its own sshd, cache and pip setup) and a tiny
distribution built here from a throwaway pure-Python project, so no test needs an index."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from wiredprof.testing.localsshd import LocalSshd, start_local_sshd
from wiredprof.remote.spec import HostSpec

if TYPE_CHECKING:
    import pytest


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def b_environment(cache: Path, index: bool) -> dict[str, str]:
    """B's session environment: its cache directory, and (index=False) a package index it cannot reach.

    PIP_CONFIG_FILE=/dev/null makes B's pip ignore this machine's pip.conf (its local indexes).
    """
    env = {"XDG_CACHE_HOME": str(cache)}
    if not index:
        env.update({"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": f"http://127.0.0.1:{closed_port()}/simple",
                    "PIP_RETRIES": "0"})
    return env


@contextlib.contextmanager
def host_b(cache: Path, index: bool) -> Iterator[LocalSshd]:
    """A throwaway sshd whose sessions see `b_environment`; stopped by PID."""
    server = start_local_sshd(environment=b_environment(cache, index))
    try:
        yield server
    finally:
        server.stop()


def spec_of(server: LocalSshd, python: str, ssh_dir: Path) -> HostSpec:
    """A HostSpec reaching `server` with its throwaway key and known_hosts."""
    return HostSpec.direct(
        server.address, port=server.port, user=server.user, identity=server.identity,
        known_hosts=server.known_hosts, python=python, name="B", allow_agent=False,
    ).with_(ssh_dir=ssh_dir, system_known_hosts=())


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_tiny_wheel(root: Path, name: str = "wptiny", version: str = "1.2.3", tag: str = "py3-none-any",
                     data: bytes = b"") -> Path:
    """Write a throwaway project (one package, `render(value)`, optional `data.bin`) under `root` and
    build its wheel there."""
    project = root / f"{name}-project"
    package = project / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f'__version__ = "{version}"\n\n\ndef render(value):\n    return f"<{name} {{value}} squared is {{value * value}}>"\n'
    )
    info = f"{name}-{version}.dist-info"
    if data:
        (package / "data.bin").write_bytes(data)
    files = {f"{name}/__init__.py": (package / "__init__.py").read_bytes(),
             **({f"{name}/data.bin": data} if data else {}),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                              f"{'true' if tag.endswith('none-any') else 'false'}\nTag: {tag}\n".encode()}
    record = "".join(f"{path},{_hash(data)},{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    wheel = root / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


def install_here(wheel: Path, site: Path, *pip_args: str) -> None:
    """Install `wheel` into `site` (a directory named site-packages, so it is not shipped by value)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--target", str(site), *pip_args, str(wheel)],
                   check=True, timeout=120, capture_output=True)


def put_on_path(monkeypatch: pytest.MonkeyPatch, site: Path) -> None:
    """Make `site` importable here, after sys.path[0] (which a flow run replaces with the flow's directory)."""
    import importlib

    monkeypatch.setattr(sys, "path", [sys.path[0], str(site), *sys.path[1:]])
    importlib.invalidate_caches()
