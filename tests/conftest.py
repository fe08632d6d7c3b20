"""Shared fixtures: paths of the test flows, and a guard that no test leaves wiredprof recording."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wiredprof.remote.localsshd import LocalSshd, SshdUnavailable, start_local_sshd

FLOWS = Path(__file__).parent / "flows"


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
