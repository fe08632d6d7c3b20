"""Fixtures: one real throwaway OpenSSH sshd for the session, and specs that reach it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from wiredprof.testing.localsshd import LocalSshd, system_python_like_ours
from wiredprof.remote.spec import HostSpec


def remote_python() -> str:
    return system_python_like_ours()


@pytest.fixture(autouse=True)
def _isolated_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real ~/.ssh or agent."""
    ssh_dir = tmp_path / "dot-ssh"
    ssh_dir.mkdir()
    monkeypatch.setenv("WIREDPROF_SSH_DIR", str(ssh_dir))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return ssh_dir


@pytest.fixture(scope="session")
def python_b() -> str:
    return remote_python()


@pytest.fixture
def make_spec(sshd: LocalSshd, python_b: str, tmp_path: Path) -> Callable[..., HostSpec]:
    def make(**changes: object) -> HostSpec:
        spec = HostSpec.direct(
            sshd.address,
            port=sshd.port,
            user=sshd.user,
            identity=sshd.identity,
            known_hosts=sshd.known_hosts,
            python=python_b,
            name="B",
            allow_agent=False,
        ).with_(ssh_dir=tmp_path / "dot-ssh", system_known_hosts=())
        return spec.with_(**changes) if changes else spec

    return make


@pytest.fixture
def spec(make_spec: Callable[..., HostSpec]) -> HostSpec:
    return make_spec()


@pytest.fixture
def copy_known_hosts(sshd: LocalSshd, tmp_path: Path) -> Callable[[], Path]:
    def copy() -> Path:
        target = tmp_path / "known_hosts_copy"
        shutil.copy(sshd.known_hosts, target)
        return target

    return copy
