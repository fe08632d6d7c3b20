"""Host keys and authentication, checked like OpenSSH, against a real sshd."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import paramiko
import pytest

from wiredprof.errors import AuthError, ConnectError, HostKeyChangedError, UnknownHostKeyError
from wiredprof.remote import connect
from wiredprof.testing.localsshd import LocalSshd, write_ed25519_key
from wiredprof.remote.spec import HostSpec
from wiredprof.remote.transport import open_transport

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]


def test_known_key_connects(spec: HostSpec) -> None:
    transport = open_transport(spec)
    try:
        assert transport.is_authenticated()
        assert transport.remote_cipher == "aes128-gcm@openssh.com"
        assert transport.sock.getsockopt(6, 1) == 1  # IPPROTO_TCP, TCP_NODELAY
    finally:
        transport.close()


def test_unknown_host_key_is_refused_with_its_fingerprint(
    make_spec: Callable[..., HostSpec], sshd: LocalSshd, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts_empty"
    spec = make_spec(known_hosts=(empty,))
    with pytest.raises(UnknownHostKeyError) as info:
        open_transport(spec)
    message = str(info.value)
    assert sshd.host_key_fingerprint in message
    assert "wiredprof hosts check B --accept-new" in message
    assert not empty.exists()  # nothing recorded without consent


def test_accept_new_records_the_key_then_it_is_known(
    make_spec: Callable[..., HostSpec], sshd: LocalSshd, tmp_path: Path
) -> None:
    target = tmp_path / "fresh" / "known_hosts"
    spec = make_spec(known_hosts=(target,))
    open_transport(spec, accept_new=True).close()
    line = target.read_text()
    assert line.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    open_transport(spec).close()  # now known, no acceptance needed


def test_changed_host_key_is_always_refused(
    make_spec: Callable[..., HostSpec], sshd: LocalSshd, tmp_path: Path
) -> None:
    other = tmp_path / "other_host_key"
    public = write_ed25519_key(other).split()
    known = tmp_path / "known_hosts_changed"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    spec = make_spec(known_hosts=(known,))
    for accept_new in (False, True):
        with pytest.raises(HostKeyChangedError) as info:
            open_transport(spec, accept_new=accept_new)
        assert "has CHANGED" in str(info.value) and "of B" in str(info.value)
        assert sshd.host_key_fingerprint in str(info.value)
    assert known.read_text().count("\n") == 1  # never overwritten


def test_wrong_key_is_an_auth_error_naming_what_was_offered(
    make_spec: Callable[..., HostSpec], tmp_path: Path
) -> None:
    stranger = tmp_path / "id_stranger"
    write_ed25519_key(stranger)
    spec = make_spec(identity_files=(stranger,), look_for_keys=False)
    with pytest.raises(AuthError) as info:
        connect(spec)
    message = str(info.value)
    assert "authentication to B" in message and str(stranger) in message and "SHA256:" in message


def test_encrypted_key_without_terminal_says_to_use_the_agent(
    make_spec: Callable[..., HostSpec], tmp_path: Path
) -> None:
    locked = tmp_path / "id_locked"
    write_ed25519_key(locked, passphrase="s3cret")
    spec = make_spec(identity_files=(locked,), look_for_keys=False)
    with pytest.raises(AuthError, match=r"encrypted.*ssh-add"):
        open_transport(spec, prompt=lambda path: None)


def test_encrypted_key_with_the_right_passphrase(
    make_spec: Callable[..., HostSpec], sshd: LocalSshd, tmp_path: Path
) -> None:
    locked = tmp_path / "id_locked_ok"
    public = write_ed25519_key(locked, passphrase="s3cret")
    authorized = sshd.workdir / "authorized_keys"
    before = authorized.read_text()
    authorized.write_text(before + public)
    try:
        asked: list[Path] = []
        spec = make_spec(identity_files=(locked,), look_for_keys=False)
        open_transport(spec, prompt=lambda path: asked.append(path) or "s3cret").close()
        assert asked == [locked]
    finally:
        authorized.write_text(before)


def test_default_keys_of_the_ssh_dir_are_tried(make_spec: Callable[..., HostSpec], sshd: LocalSshd) -> None:
    spec = make_spec(identity_files=(), look_for_keys=True)
    (spec.ssh_dir / "id_ed25519").write_bytes(sshd.identity.read_bytes())
    (spec.ssh_dir / "id_ed25519").chmod(0o600)
    open_transport(spec).close()


def test_unreachable_port_is_a_connect_error(make_spec: Callable[..., HostSpec]) -> None:
    with pytest.raises(ConnectError, match="cannot reach 127.0.0.1:1"):
        open_transport(make_spec(port=1))


def test_proxy_jump_goes_through_the_jump_host(make_spec: Callable[..., HostSpec]) -> None:
    jump = make_spec(name="J")
    spec = make_spec(proxy_jump=jump)
    transport = open_transport(spec)
    try:
        assert isinstance(transport.sock, paramiko.Channel)
        assert transport.is_authenticated()
    finally:
        transport.close()
