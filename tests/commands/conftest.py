"""CLI tests run in a project directory of their own: `.wiredprof/` and wiredprof.toml go there."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.commands.clitools import wp
from wiredprof.testing.localsshd import LocalSshd


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def unprobed_b(sshd: LocalSshd, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Host B (the test sshd) added to the project's inventory, not checked yet."""
    monkeypatch.setenv("WIREDPROF_SSH_DIR", str(tmp_path / "dot-ssh"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    r = wp("hosts", "add", "B", "--address", f"{sshd.user}@{sshd.address}:{sshd.port}",
           "--identity", sshd.identity, "--known-hosts", sshd.known_hosts, "--python", sys.executable)
    assert r.exit_code == 0, r.stderr
    return "B"
