"""A private environment on host B with A's exact versions of what a stage needs.

Everything goes over the host's one SSH connection. B runs only its worker (stdlib functions
of `hostenv` and `envdirs`: what is installed, free space, directories), `python -m venv`,
`ensurepip` and pip; wheels travel over SFTP. An environment lives in `${XDG_CACHE_HOME:-~/.cache}/wiredprof/envs/KEY`
(mode 0700), KEY a hash of B's Python and the pinned set. It is built in a temporary directory
beside it and renamed when complete, so an interrupted provision never leaves one marked ready;
the same set again finds it and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko

from wiredprof.errors import UsageError, WiredprofError
from wiredprof.remote.envdirs import commit, free_bytes, make_private_dir, remove_tree
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.hostenv import MARKER, HostInventory, inspect_host
from wiredprof.remote.requirements import StageNeeds, canonical_name
from wiredprof.remote.wheels import wheel_for

__all__ = ["ProvisionResult", "ProvisionError", "NoSpaceError", "env_key", "provision"]

log = logging.getLogger(__name__)

_ENV_BASE_BYTES = 30 * 2**20  # a venv with pip
_COMMAND_TIMEOUT_S = 1800.0
_NEARLY_FULL_BYTES = 1 << 20  # a command failing with less free than this failed for want of space

Say = Callable[[str], None]


class ProvisionError(WiredprofError):
    """Building the environment on B failed (pip or venv said why)."""


class NoSpaceError(UsageError):
    """B has not enough free space where the environments go."""


def env_key(inventory: HostInventory, pins: list[str]) -> str:
    """The environment's directory name: a hash of B's Python (version, path, platform) and the pins."""
    text = json.dumps([inventory.python_version, inventory.base_executable, inventory.platform, sorted(pins)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ProvisionResult:
    """What `provision` did: where the environment is, its Python, how, how long, bytes sent."""

    host: str
    env_dir: str
    python: str
    reused: bool
    path: str  # "reused", "index", "offline", or "none" (nothing to install)
    seconds: float
    bytes_sent: int
    pins: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass
class _RemoteRun:
    code: int
    stdout: str
    stderr: str

    def last_error(self) -> str:
        lines = [x.strip() for x in (self.stderr + "\n" + self.stdout).splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("ERROR") or "Error" in x or "error:" in x]
        return (errors or lines or [f"exit status {self.code}"])[-1]


def _run(transport: paramiko.Transport, argv: list[str], timeout_s: float = _COMMAND_TIMEOUT_S) -> _RemoteRun:
    """Run one command on B (its own exec channel on the same connection), output collected, bounded."""
    channel = transport.open_session(timeout=30)
    try:
        channel.settimeout(0.5)
        channel.exec_command("exec " + " ".join(shlex.quote(a) for a in argv))
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise ProvisionError(f"`{' '.join(argv[:4])} ...` did not finish within {timeout_s:.0f} s on B")
            busy = False
            if channel.recv_ready():
                out += channel.recv(65536)
                busy = True
            if channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                busy = True
            if not busy:
                if channel.exit_status_ready():
                    break
                if channel.closed or not transport.is_active():
                    raise ProvisionError(f"the connection to B was lost during `{' '.join(argv[:4])} ...`")
                time.sleep(0.02)
        code = channel.recv_exit_status()
    finally:
        channel.close()
    return _RemoteRun(code, out.decode(errors="replace"), err.decode(errors="replace"))


def _is_no_space(text: str) -> bool:
    return "No space left on device" in text or "Errno 28" in text or "Disk quota exceeded" in text


class _Build:
    """One provision in progress: a temporary directory on B, commands, wheels sent, clean-up."""

    def __init__(self, executor: RemoteExecutor, inventory: HostInventory, key: str, say: Say) -> None:
        self.executor = executor
        self.inventory = inventory
        self.say = say
        self.transport = executor.session().transport
        self.final = f"{inventory.envs_dir}/{key}"
        self.tmp = f"{inventory.envs_dir}/.tmp-{key}-{secrets.token_hex(4)}"
        self.python = f"{self.tmp}/bin/python"
        self.bytes_sent = 0
        self._sftp: paramiko.SFTPClient | None = None

    def run(self, argv: list[str], what: str) -> _RemoteRun:
        self.bytes_sent += sum(len(a) for a in argv)
        result = _run(self.transport, argv)
        if result.code != 0 and (
            _is_no_space(result.stdout + result.stderr)
            or self.executor.call(free_bytes, self.inventory.envs_dir) < _NEARLY_FULL_BYTES
        ):
            raise NoSpaceError(
                f"host {self.inventory.host}: no space left on the device of {self.inventory.envs_dir} "
                f"while {what}: free some space there (or set XDG_CACHE_HOME on B to a bigger disk) and retry"
            )
        return result

    def send(self, local: Path) -> str:
        if self._sftp is None:
            self._sftp = paramiko.SFTPClient.from_transport(self.transport)
            if self._sftp is None:
                raise ProvisionError(f"host {self.inventory.host}: cannot open SFTP on the SSH connection")
        remote = f"{self.tmp}/.wheels/{local.name}"
        try:
            self._sftp.put(str(local), remote)
        except OSError as exc:
            # SFTP reports a full disk as a bare "Failure": ask B how much room is left.
            size = local.stat().st_size
            if _is_no_space(str(exc)) or self.executor.call(free_bytes, self.inventory.envs_dir) < size:
                raise NoSpaceError(
                    f"host {self.inventory.host}: no space left under {self.inventory.envs_dir} for {local.name} "
                    f"({size / 2**20:.1f} MiB): free some space there and retry"
                ) from None
            raise ProvisionError(f"host {self.inventory.host}: cannot send {local.name} over SFTP: {exc}") from None
        self.bytes_sent += local.stat().st_size
        return remote

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()

    def discard(self) -> None:
        try:
            self.executor.call(remove_tree, self.tmp)
        except Exception:  # noqa: BLE001 - the link may be gone; the next provision removes it
            log.info("could not remove %s on %s now; the next provision will", self.tmp, self.inventory.host)


def _pip_wheel_here(dest: Path) -> Path:
    """A pip wheel to bootstrap pip on a B without ensurepip (A's own pip, rebuilt)."""
    import importlib.metadata as metadata

    from wiredprof.remote.wheels import rebuild_wheel
    from packaging.tags import Tag

    return rebuild_wheel(metadata.distribution("pip"), Tag("py3", "none", "any"), dest)


def provision(
    executor: RemoteExecutor,
    needs: StageNeeds,
    *,
    offline: bool | None = None,
    say: Say | None = None,
    bootstrap_pip: bool | None = None,
) -> ProvisionResult:
    """Make sure B has an environment with exactly `needs`; build it if not.

    `offline`: None tries B's package index, then wheels from A; True goes straight to
    wheels from A; False uses only B's index. `bootstrap_pip` forces (True) the path taken
    when B's Python has no ensurepip: pip's wheel is sent from A.
    """
    say = say or (lambda text: log.info("%s", text))
    start = time.perf_counter()
    inventory = inspect_host(executor)
    pins = needs.pins
    if not pins:
        return ProvisionResult(inventory.host, "", executor.spec.python, True, "none",
                               time.perf_counter() - start, 0, ())
    key = env_key(inventory, pins)
    final = f"{inventory.envs_dir}/{key}"
    if key in inventory.ready_envs:
        return ProvisionResult(inventory.host, final, f"{final}/bin/python", True, "reused",
                               time.perf_counter() - start, 0, tuple(pins))
    if not inventory.has_venv:
        raise UsageError(f"host {inventory.host}: {inventory.executable} has no `venv` module; install it "
                         f"there (Debian: apt-get install python3-venv) and retry")
    bootstrap = (not inventory.has_ensurepip) if bootstrap_pip is None else bootstrap_pip
    build = _Build(executor, inventory, key, say)
    notes: list[str] = []
    try:
        removed = executor.call(make_private_dir, inventory.envs_dir, build.tmp)
        if removed:
            notes.append(f"removed {len(removed)} unfinished environment(s) left by an interrupted provision")
        with tempfile.TemporaryDirectory(prefix="wiredprof-wheels-") as local_dir:
            _make_venv(build, bootstrap, Path(local_dir))
            path = _install(build, needs, offline, Path(local_dir), notes)
        _verify(build, needs)
        marker = json.dumps({"key": key, "pins": pins, "python": inventory.python_version,
                             "base": inventory.base_executable, "path": path,
                             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=1)
        if not executor.call(commit, build.tmp, final, MARKER, marker):
            notes.append("another provision built the same environment first: using it")
    except BaseException:
        build.discard()
        raise
    finally:
        build.close()
    return ProvisionResult(inventory.host, final, f"{final}/bin/python", False, path,
                           time.perf_counter() - start, build.bytes_sent, tuple(pins), tuple(notes))


def _estimate(needs: StageNeeds) -> int:
    import importlib.metadata as metadata

    total = 0
    for d in needs.distributions:
        try:
            total += sum(f.size or 0 for f in metadata.distribution(d.name).files or ())
        except metadata.PackageNotFoundError:
            continue
    return _ENV_BASE_BYTES + total * 2


def _make_venv(build: _Build, bootstrap_pip: bool, local_dir: Path) -> None:
    inventory = build.inventory
    python = inventory.base_executable
    need = _ENV_BASE_BYTES
    if inventory.free_bytes < need:
        raise NoSpaceError(
            f"host {inventory.host}: {inventory.free_bytes / 2**20:.1f} MiB free under {inventory.envs_dir}, "
            f"an environment needs at least {need / 2**20:.0f} MiB: free some space there and retry"
        )
    # Without pip first, then pip on its own: venv hides why ensurepip failed (a full disk, say).
    result = build.run([python, "-m", "venv", "--without-pip", build.tmp], "creating the virtual environment")
    if result.code != 0:
        raise ProvisionError(f"host {inventory.host}: `{python} -m venv` failed: {result.last_error()}")
    if not bootstrap_pip:
        result = build.run([build.python, "-m", "ensurepip", "--default-pip"], "installing pip (ensurepip)")
        if result.code != 0:
            raise ProvisionError(f"host {inventory.host}: `python -m ensurepip` failed: {result.last_error()}")
        return
    wheel = build.send(_pip_wheel_here(local_dir))
    build.say(f"  pip bootstrapped from a wheel sent by this side ({Path(wheel).name})")
    result = build.run([build.python, f"{wheel}/pip", "install", "--quiet", "--no-index",
                        "--disable-pip-version-check", wheel], "installing pip")
    if result.code != 0:
        raise ProvisionError(f"host {inventory.host}: installing pip from its wheel failed: {result.last_error()}")


def _pip_install(build: _Build, extra: list[str], pins: list[str]) -> _RemoteRun:
    return build.run([build.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                      "--quiet", *extra, *pins], "installing " + " ".join(pins))


def _install(build: _Build, needs: StageNeeds, offline: bool | None, local_dir: Path, notes: list[str]) -> str:
    inventory = build.inventory
    pins = needs.pins
    if not pins:
        return "index"
    free_after_venv = inventory.free_bytes - _ENV_BASE_BYTES
    if free_after_venv < _estimate(needs) - _ENV_BASE_BYTES:
        raise NoSpaceError(
            f"host {inventory.host}: {free_after_venv / 2**20:.1f} MiB free under {inventory.envs_dir}, "
            f"{' '.join(pins)} need about {(_estimate(needs) - _ENV_BASE_BYTES) / 2**20:.0f} MiB: "
            f"free some space there and retry"
        )
    if offline is not True:
        build.say(f"  installing {len(pins)} distribution(s) on {inventory.host} from its package index")
        result = _pip_install(build, [], pins)
        if result.code == 0:
            return "index"
        if offline is False:
            raise ProvisionError(f"host {inventory.host}: pip could not install from its index: {result.last_error()}")
        notes.append(f"{inventory.host}'s package index failed ({result.last_error()}): sent wheels from here")
    tags = inventory.tags
    sent: list[str] = []
    for d in needs.distributions:
        wheel, how = wheel_for(d, tags, local_dir)
        build.send(wheel)
        sent.append(f"{wheel.name} ({how}, {wheel.stat().st_size / 2**20:.1f} MiB)")
    build.say(f"  sent {len(sent)} wheel(s) over SFTP: " + ", ".join(sent))
    result = _pip_install(build, ["--no-index", "--find-links", f"{build.tmp}/.wheels"], pins)
    if result.code != 0:
        raise ProvisionError(f"host {inventory.host}: pip could not install the wheels sent: {result.last_error()}")
    return "offline"


def _verify(build: _Build, needs: StageNeeds) -> None:
    """Ask the new environment's pip what it has (same connection) and compare with the pins."""
    result = build.run([build.python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
                       "listing what was installed")
    try:
        have = {canonical_name(d["name"]): d["version"] for d in json.loads(result.stdout)}
    except (ValueError, KeyError, TypeError):
        raise ProvisionError(f"host {build.inventory.host}: `pip list` in the new environment failed: "
                             f"{result.last_error()}") from None
    wrong = [f"{d.name} {have.get(d.key, 'missing')} (wanted {d.version})"
             for d in needs.distributions if have.get(d.key) != d.version]
    if wrong:
        raise ProvisionError(f"host {build.inventory.host}: the new environment has " + ", ".join(wrong))
