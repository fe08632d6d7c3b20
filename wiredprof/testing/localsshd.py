"""A throwaway OpenSSH server on 127.0.0.1: fresh keys, its own known_hosts, stopped by PID.

Used by the tests and by the demo command, which plays "host B" on this machine. Nothing
here touches `~/.ssh` or the system's sshd: every file lives in one temporary directory.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from wiredprof.config import HostEntry
from wiredprof.testing.procs import stop_group

__all__ = ["LocalSshd", "SshdUnavailable", "find_sshd", "start_local_sshd", "local_sshd", "write_ed25519_key",
           "write_sshd_files", "system_python_like_ours"]

log = logging.getLogger(__name__)

_SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd")


class SshdUnavailable(RuntimeError):
    """No OpenSSH server binary here, or it did not come up."""


@dataclass
class LocalSshd:
    """A running throwaway sshd and the client files that reach it."""

    address: str
    port: int
    user: str
    identity: Path
    known_hosts: Path
    workdir: Path
    pid: int
    host_key_fingerprint: str
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # Process groups of earlier listeners (see stop_listener), whose sessions may live on.
    _old_groups: list[int] = field(default_factory=list, repr=False)

    @property
    def log_path(self) -> Path:
        """Where sshd writes its log (`-e`), useful when a test fails."""
        return self.workdir / "sshd.log"

    def host_entry(self, name: str = "B", python: str | None = None) -> HostEntry:
        """This sshd as a `[hosts.NAME]` of wiredprof.toml (write it with `ProjectConfig.add_host`)."""
        return HostEntry(name, f"{self.user}@{self.address}:{self.port}", identity=str(self.identity),
                         python=python, known_hosts=str(self.known_hosts))

    def alive(self) -> bool:
        """True while the sshd listener process runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop_listener(self, timeout_s: float = 5.0) -> None:
        """Stop only the listening sshd: new connections are refused, open sessions live on."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._old_groups.append(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    def start_listener(self, startup_timeout_s: float = 10.0) -> None:
        """Start the listener again on the same port, with the same keys and configuration."""
        if self._proc is not None:
            return
        proc = _spawn(self.workdir)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if _port_accepts(self.port):
                self._proc = proc
                self.pid = proc.pid
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        raise SshdUnavailable(f"sshd did not come back on port {self.port}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop sshd and every process of its group (sessions, workers) by PID; bounded."""
        for group in self._old_groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self._old_groups.clear()
        proc, self._proc = self._proc, None
        if proc is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        stop_group(proc, timeout_s, "sshd")
        shutil.rmtree(self.workdir, ignore_errors=True)


def find_sshd() -> str:
    """The path of the OpenSSH server binary, or raise `SshdUnavailable` with how to get it."""
    for path in _SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("sshd")
    if found:
        return found
    raise SshdUnavailable("no sshd binary found; install it: apt-get install openssh-server")


def write_ed25519_key(path: Path, comment: str = "wiredprof", passphrase: str | None = None) -> str:
    """Write a new ed25519 key pair (`path`, `path.pub`) in OpenSSH format; return the public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.write_bytes(private)
    path.chmod(0o600)
    line = f"{public.decode()} {comment}\n"
    path.with_name(path.name + ".pub").write_text(line)
    return line


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        # sshd speaks first; a banner proves it is our daemon and not a stranger on the port.
        try:
            return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False


def write_sshd_files(
    workdir: Path,
    address: str,
    port: int,
    *,
    environment: dict[str, str] | None = None,
    config_lines: tuple[str, ...] = (),
    log_level: str = "ERROR",
) -> str:
    """An sshd's files in `workdir`, for `address:port`; returns its host key's fingerprint.

    Host and client keys (`ssh_host_ed25519_key`, `id_ed25519`) are made once and kept;
    `authorized_keys`, `known_hosts` (what the client trusts) and `sshd_config` are written
    for this address and port. `config_lines` are added to sshd_config (`AllowUsers ...`);
    `environment` is set in every session (SetEnv), as a host's own configuration would.
    """
    host_key = workdir / "ssh_host_ed25519_key"
    if not host_key.is_file():
        write_ed25519_key(host_key, comment="host")
    if not (workdir / "id_ed25519").is_file():
        (workdir / "authorized_keys").write_text(write_ed25519_key(workdir / "id_ed25519", comment="client"))
    kind, key = (workdir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    who = address if port == 22 else f"[{address}]:{port}"
    (workdir / "known_hosts").write_text(f"{who} {kind} {key}\n")
    # SetEnv: what a host's own environment would say (its pip index, its cache directory).
    setenv = [f'SetEnv {" ".join(f"{k}={v}" for k, v in environment.items())}'] if environment else []
    (workdir / "sshd_config").write_text("\n".join([
        f"ListenAddress {address}:{port}",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 64",
        "MaxSessions 64",
        f"LogLevel {log_level}",
        "Subsystem sftp internal-sftp",
        *config_lines,
        *setenv,
        "",
    ]))
    return _fingerprint(key)


def start_local_sshd(
    startup_timeout_s: float = 10.0, attempts: int = 3, environment: dict[str, str] | None = None
) -> LocalSshd:
    """Start sshd on a free loopback port with fresh host and client keys; wait until it answers.

    `environment` is set in every session (sshd's SetEnv), as a host's own configuration would.
    """
    find_sshd()  # fails early, with how to install it
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation dir
    workdir = Path(tempfile.mkdtemp(prefix="wiredprof-sshd-"))
    last_error = "never started"
    for _ in range(attempts):
        port = _free_port()
        fingerprint = write_sshd_files(workdir, "127.0.0.1", port, environment=environment)
        proc = _spawn(workdir)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if _port_accepts(port):
                return LocalSshd(
                    address="127.0.0.1",
                    port=port,
                    user=getpass.getuser(),
                    identity=workdir / "id_ed25519",
                    known_hosts=workdir / "known_hosts",
                    workdir=workdir,
                    pid=proc.pid,
                    host_key_fingerprint=fingerprint,
                    _proc=proc,
                )
            time.sleep(0.05)
        last_error = (workdir / "sshd.log").read_text(errors="replace")[-500:] or "no answer on the port"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    shutil.rmtree(workdir, ignore_errors=True)
    raise SshdUnavailable(f"sshd did not come up after {attempts} attempts: {last_error.strip()}")


def _spawn(workdir: Path) -> subprocess.Popen[bytes]:
    """sshd in the foreground, in a process group of its own, logging to workdir/sshd.log."""
    with open(workdir / "sshd.log", "ab") as logf:
        return subprocess.Popen(
            [find_sshd(), "-D", "-e", "-f", str(workdir / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )


def _fingerprint(b64: str) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(base64.b64decode(b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@contextlib.contextmanager
def local_sshd(startup_timeout_s: float = 10.0) -> Iterator[LocalSshd]:
    """`with local_sshd() as s:` a running throwaway sshd, always stopped on exit."""
    server = start_local_sshd(startup_timeout_s)
    try:
        yield server
    finally:
        server.stop()


def system_python_like_ours(system: str = "/usr/bin/python3") -> str:
    """The system's python3 when it has our major.minor (a worker without our venv), else ours."""
    import sys

    try:
        got = subprocess.run(
            [system, "-c", "import sys;print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        got = ""
    return system if got == "%d.%d" % sys.version_info[:2] else sys.executable
