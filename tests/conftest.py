"""Shared fixtures: a hermetic home and working directory for every test, paths of the test flows,
and a guard that no test leaves wiredprof recording."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wiredprof.testing.localsshd import LocalSshd, SshdUnavailable, start_local_sshd

FLOWS = Path(__file__).parent / "flows"


# What the user's environment could leak into a test: their configuration, keys, agent, pip setup.
_USER_ENV = ("SSH_AUTH_SOCK", "SSH_AGENT_PID", "WIREDPROF_SSH_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own HOME (no ~/.ssh, no agent) and an empty working directory.

    Nothing of the user's leaks in: not ~/.ssh/config or known_hosts, not a wiredprof.toml or
    [tool.wiredprof] in the directory the suite was started from (the demo leaves one there).
    """
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    work = tmp_path / "cwd"
    work.mkdir()
    for name in _USER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def flows() -> Path:
    return FLOWS


@pytest.fixture(autouse=True)
def no_recorder_left_behind():
    from wiredprof.profiling.control import current_control
    from wiredprof.profiling.recorder import current_recorder

    yield
    assert current_recorder() is None, "a test left wiredprof recording"
    assert current_control() is None, "a test left a run control installed"


@pytest.fixture(scope="session")
def sshd() -> Iterator[LocalSshd]:
    """One real throwaway OpenSSH sshd on 127.0.0.1 for the whole session, stopped by PID."""
    try:
        server = start_local_sshd()
    except SshdUnavailable as exc:
        pytest.fail(f"the ssh tests need OpenSSH's sshd (scripts/bootstrap.sh installs it): {exc}")
    try:
        yield server
    finally:
        server.stop()
