"""The throwaway sshd: comes up on loopback with its own keys, goes away by PID."""

from __future__ import annotations

import os
import socket

import pytest

from wiredprof.testing.localsshd import start_local_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]


def test_start_and_stop_by_pid() -> None:
    server = start_local_sshd()
    try:
        assert server.alive() and server.address == "127.0.0.1"
        assert server.known_hosts.read_text().startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")
        assert oct(server.identity.stat().st_mode & 0o777) == "0o600"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            assert s.recv(4) == b"SSH-"
    finally:
        server.stop()
    assert not server.alive() and not server.workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
