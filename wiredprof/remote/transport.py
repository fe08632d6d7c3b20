"""One authenticated paramiko `Transport` to a host, checked like OpenSSH checks it.

Host keys: system and user known_hosts are read; an unknown key is refused unless the
caller accepts it explicitly (then it is appended to the user's known_hosts); a changed
key is always refused. Authentication: identity files, then the agent, then the default
keys in the ssh directory. Nothing secret is ever written.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Callable

import paramiko

from wiredprof.errors import AuthError, ConnectError, HostKeyChangedError, NotSshError, UnknownHostKeyError
from wiredprof.remote.spec import HostSpec

__all__ = ["HostKeyPolicy", "open_transport", "PassphrasePrompt", "KEEPALIVE_S"]

log = logging.getLogger(__name__)
# paramiko logs its transport thread's failures with tracebacks; wiredprof reports them in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

KEEPALIVE_S = 15
_BANNER_TIMEOUT_S = 5.0
_PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr")
_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")

PassphrasePrompt = Callable[[Path], "str | None"]


def _tty_prompt(path: Path) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"Enter passphrase for key '{path}': ")


class HostKeyPolicy:
    """OpenSSH's rules for one host: known -> ok, unknown -> refuse or accept-new, changed -> refuse."""

    def __init__(self, spec: HostSpec, accept_new: bool = False) -> None:
        self.spec = spec
        self.accept_new = accept_new
        self.known = paramiko.HostKeys()
        for path in (*spec.system_known_hosts, *spec.user_known_hosts):
            if path.is_file():
                try:
                    self.known.load(str(path))
                except (OSError, paramiko.SSHException) as exc:
                    log.warning("cannot read known_hosts %s: %s", path, exc)

    def known_types(self) -> list[str]:
        """Key types recorded for this host, so negotiation prefers one we can check."""
        entry = self.known.lookup(self.spec.known_hosts_name)
        return list(entry.keys()) if entry else []

    def verify(self, key: paramiko.PKey) -> None:
        """Return if `key` is trusted for the host; raise a `HostKeyError` otherwise."""
        name = self.spec.known_hosts_name
        entry = self.known.lookup(name)
        fingerprint = f"{key.get_name()} {key.fingerprint}"
        if entry is not None and entry.get(key.get_name()) == key:
            return
        if entry:
            user_file = self.spec.user_known_hosts[0]
            raise HostKeyChangedError(
                f"WARNING: the host key of {self.spec.name} ({name}) has CHANGED: "
                f"it now offers {fingerprint}, which differs from the recorded key; "
                f"this may be an attack, so wiredprof refuses to connect. If the change is expected, "
                f"remove the old key with `ssh-keygen -R '{name}' -f {user_file}`",
                host=self.spec.name,
                fingerprint=fingerprint,
            )
        if not self.accept_new:
            raise UnknownHostKeyError(
                f"the host key of {self.spec.name} ({name}) is not known: {fingerprint}. "
                f"If that fingerprint is right, accept it with "
                f"`wiredprof hosts check {self.spec.name} --accept-new`",
                host=self.spec.name,
                fingerprint=fingerprint,
            )
        self._record(key)

    def _record(self, key: paramiko.PKey) -> None:
        path = self.spec.user_known_hosts[0]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = paramiko.hostkeys.HostKeyEntry([self.spec.known_hosts_name], key).to_line()
        if not line:
            raise UnknownHostKeyError(
                f"cannot record a {key.get_name()} key for {self.spec.name}",
                host=self.spec.name,
                fingerprint=key.fingerprint,
            )
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line)
        self.known.add(self.spec.known_hosts_name, key.get_name(), key)
        log.warning(
            "recorded host key of %s (%s %s) in %s", self.spec.name, key.get_name(), key.fingerprint, path
        )


def _tcp_socket(spec: HostSpec) -> socket.socket:
    try:
        sock = socket.create_connection((spec.hostname, spec.port), timeout=spec.connect_timeout_s)
    except OSError as exc:
        raise ConnectError(f"host {spec.name}: cannot reach {spec.hostname}:{spec.port}: {exc}") from None
    # paramiko never sets it; without it every small frame waits for Nagle (connect 107 ms vs 27 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _jump_channel(spec: HostSpec, accept_new: bool, prompt: PassphrasePrompt) -> paramiko.Channel:
    assert spec.proxy_jump is not None
    jump = open_transport(spec.proxy_jump, accept_new=accept_new, prompt=prompt)
    try:
        return jump.open_channel(
            "direct-tcpip", (spec.hostname, spec.port), ("127.0.0.1", 0), timeout=spec.connect_timeout_s
        )
    except (paramiko.SSHException, OSError) as exc:
        jump.close()
        raise ConnectError(
            f"host {spec.name}: jump host {spec.proxy_jump.name} cannot reach "
            f"{spec.hostname}:{spec.port}: {exc}"
        ) from None


def open_transport(
    spec: HostSpec, accept_new: bool = False, prompt: PassphrasePrompt | None = None
) -> paramiko.Transport:
    """Connect, verify the host key, authenticate; return the live transport."""
    prompt = prompt or _tty_prompt
    sock: socket.socket | paramiko.Channel
    sock = _jump_channel(spec, accept_new, prompt) if spec.proxy_jump else _tcp_socket(spec)
    transport = paramiko.Transport(sock)
    transport.name = f"wiredprof-ssh-{spec.name}"  # paramiko's reader thread: the link's, never a stage's competitor
    transport.banner_timeout = min(spec.connect_timeout_s, _BANNER_TIMEOUT_S)
    policy = HostKeyPolicy(spec, accept_new=accept_new)
    try:
        options = transport.get_security_options()
        available = list(options.ciphers)
        options.ciphers = tuple(
            [c for c in _PREFERRED_CIPHERS if c in available]
            + [c for c in available if c not in _PREFERRED_CIPHERS]
        )
        known = policy.known_types()
        if known:
            types = list(options.key_types)
            options.key_types = tuple([t for t in types if t in known] + [t for t in types if t not in known])
        try:
            transport.start_client(timeout=spec.connect_timeout_s)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if "banner" in str(exc).lower():
                raise NotSshError(
                    f"host {spec.name}: {spec.hostname}:{spec.port} accepts connections but does not speak SSH "
                    f"(no SSH banner within {transport.banner_timeout:g} s): check the port in its address"
                ) from None
            raise ConnectError(
                f"host {spec.name}: SSH handshake with {spec.hostname}:{spec.port} failed: {exc}"
            ) from None
        policy.verify(transport.get_remote_server_key())
        _authenticate(transport, spec, prompt)
    except BaseException:
        transport.close()
        raise
    transport.set_keepalive(KEEPALIVE_S)
    return transport


def _candidate_keys(spec: HostSpec) -> list[Path]:
    paths = list(spec.identity_files)
    if spec.look_for_keys or not paths:
        paths += [spec.ssh_dir / name for name in _DEFAULT_KEYS]
    seen: set[Path] = set()
    return [p for p in paths if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def _needs_passphrase(exc: Exception) -> bool:
    # paramiko raises PasswordRequiredException for PEM keys; for OpenSSH-format keys the
    # cryptography backend's TypeError ("password-protected") comes through unwrapped.
    return isinstance(exc, paramiko.PasswordRequiredException) or (
        isinstance(exc, TypeError) and "password" in str(exc).lower()
    )


def _load_key(path: Path, prompt: PassphrasePrompt, hints: list[str]) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if not _needs_passphrase(exc):
            hints.append(f"cannot read key {path}: {exc}")
            return None
        passphrase = prompt(path)
        if passphrase is None:
            hints.append(
                f"key {path} is encrypted and there is no terminal to ask its passphrase: "
                f"load it into the agent (`ssh-add {path}`) and retry"
            )
            return None
        try:
            return paramiko.PKey.from_path(path, passphrase.encode())  # type: ignore[arg-type]
        except (paramiko.SSHException, ValueError, TypeError):
            hints.append(f"wrong passphrase for key {path}")
            return None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        hints.append(f"cannot read key {path}: {exc}")
        return None


def _authenticate(transport: paramiko.Transport, spec: HostSpec, prompt: PassphrasePrompt) -> None:
    tried: list[str] = []
    hints: list[str] = []
    explicit = set(spec.identity_files)

    def attempt(key: paramiko.PKey, label: str) -> bool:
        tried.append(f"{label} ({key.get_name()} {key.fingerprint})")
        try:
            transport.auth_publickey(spec.user, key)
        except paramiko.BadAuthenticationType as exc:
            raise AuthError(
                f"host {spec.name} accepts only {', '.join(exc.allowed_types)}, "
                f"wiredprof uses public keys: add your key to its authorized_keys"
            ) from None
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectError(f"host {spec.name}: connection lost during authentication: {exc}") from None
        return bool(transport.is_authenticated())

    for path in spec.identity_files:
        if path.exists():
            key = _load_key(path, prompt, hints)
            if key is not None and attempt(key, str(path)):
                return
        else:
            hints.append(f"identity {path} does not exist")
    if spec.allow_agent and os.environ.get("SSH_AUTH_SOCK"):
        agent = paramiko.Agent()
        try:
            for agent_key in agent.get_keys():
                if attempt(agent_key, "agent key"):
                    return
        finally:
            agent.close()
    if spec.look_for_keys or not spec.identity_files:
        for path in _candidate_keys(spec):
            if path in explicit or not path.exists():
                continue
            key = _load_key(path, prompt, hints)
            if key is not None and attempt(key, str(path)):
                return
    offered = "; ".join(tried) if tried else "no key at all"
    extra = ("; " + "; ".join(hints)) if hints else ""
    raise AuthError(
        f"authentication to {spec.name} as {spec.address} failed: offered {offered}{extra}. "
        f"Set `identity` in [hosts.{spec.name}] or add the public key to the server's authorized_keys"
    )
