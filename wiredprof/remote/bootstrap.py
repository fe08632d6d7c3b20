"""Start the zero-install worker on host B over one SSH exec channel.

`python3 -c BOOT` saves the channel's stdin/stdout on private fds, points fd 0 at
/dev/null and fd 1 at stderr, tells A its Python version in one line (readable by any
Python, so a mismatch is reported before anything else is sent), then reads the worker's
source from the channel and runs it. cloudpickle's source follows when B lacks it or has
another version than A.
"""

from __future__ import annotations

import logging
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import paramiko

from wiredprof.errors import ConnectError, PythonMismatchError, WorkerStartError
from wiredprof.remote import worker as worker_module
from wiredprof.remote.frames import FrameChannel, LinkClosed
from wiredprof.remote.worker import (
    DEFAULT_DEAD_AFTER_S,
    DEFAULT_MAX_FRAME,
    FRAME_MAGIC,
    HEADER,
    MAGIC,
    Kind,
    decode_json,
    encode_json,
)

__all__ = ["WorkerHello", "BOOTSTRAP", "bootstrap_command", "start_worker"]

log = logging.getLogger(__name__)

# Runs on any Python (2.7 included) far enough to report the version line.
BOOTSTRAP = (
    "import os,sys,types\n"
    "i=os.fdopen(os.dup(0),'rb');o=os.fdopen(os.dup(1),'wb',0)\n"
    "n=os.open(os.devnull,os.O_RDONLY);os.dup2(n,0);os.dup2(2,1)\n"
    "o.write(('"
    + MAGIC
    + " %d %d %d %d %s\\n'%(sys.version_info[:3]+(os.getpid(),sys.executable))).encode())\n"
    "L=i.readline()\n"
    "if L.strip():\n"
    " m=types.ModuleType('wiredprof_worker');sys.modules[m.__name__]=m\n"
    " exec(compile(i.read(int(L)),'wiredprof-worker','exec'),m.__dict__);m.serve(i,o)\n"
)

_WINDOW = 8 * 1024 * 1024
# Bigger packets from sshd mean fewer trips through paramiko's per-packet Python code.
_MAX_PACKET = 128 * 1024


@dataclass(frozen=True)
class WorkerHello:
    """What the worker said about itself at connect."""

    pid: int
    python: str
    executable: str
    cloudpickle_remote: str | None
    cloudpickle_used: str
    cloudpickle_shipped: bool
    platform: str
    hostname: str


def bootstrap_command(python: str) -> str:
    """The exact command line exec'd on B (`exec` spares the shell's extra process).

    The interpreter path is shell-quoted (spaces and all); a leading `~/` still means B's home.
    """
    quoted = f'"$HOME"/{shlex.quote(python[2:])}' if python.startswith("~/") else shlex.quote(python)
    return f"exec {quoted} -c {shlex.quote(BOOTSTRAP)}"


def _worker_source() -> bytes:
    return Path(worker_module.__file__ or "").read_bytes()


def _cloudpickle_sources() -> dict[str, list[Any]]:
    """cloudpickle's own modules as {name: [is_package, source]}, to ship when B lacks them."""
    sources: dict[str, list[Any]] = {}
    package_dir = Path(cloudpickle.__file__).parent
    sources["cloudpickle"] = [True, (package_dir / "__init__.py").read_text()]
    for path in sorted(package_dir.glob("*.py")):
        if path.name != "__init__.py":
            sources[f"cloudpickle.{path.stem}"] = [False, path.read_text()]
    return sources


def _read_version_line(channel: paramiko.Channel, deadline: float) -> bytes:
    # Nothing but this line can arrive before A sends the worker's source, so reading ahead is safe.
    line = b""
    while not line.endswith(b"\n") and len(line) < 4096:
        if time.monotonic() > deadline:
            raise TimeoutError
        try:
            chunk = channel.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            break
        line += chunk
    return line


def start_worker(
    transport: paramiko.Transport,
    host: str,
    python: str,
    timeout_s: float = 20.0,
    max_threads: int = 32,
    max_frame: int = DEFAULT_MAX_FRAME,
    dead_after_s: float = DEFAULT_DEAD_AFTER_S,
) -> tuple[paramiko.Channel, FrameChannel, WorkerHello]:
    """Exec the bootstrap, check the Python version, ship the worker (and cloudpickle if needed).

    Any failure on the way is a `ConnectError` (or `PythonMismatchError`) in one line, with
    what the host printed; the channel is closed.
    """
    channel = transport.open_session(window_size=_WINDOW, max_packet_size=_MAX_PACKET, timeout=timeout_s)
    try:
        return _start(channel, host, python, timeout_s, max_threads, max_frame, dead_after_s)
    except (LinkClosed, TimeoutError, ValueError, KeyError, OSError, paramiko.SSHException) as exc:
        why = "no answer in time" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        tail = _stderr_tail(channel)
        raise WorkerStartError(
            f"host {host}: the worker ended during start-up ({why}{_exit_status(channel)}): {tail or 'no output'}; "
            f"check that `{python}` there runs a plain Python {sys.version_info.major}.{sys.version_info.minor}"
        ) from None
    except BaseException:
        channel.close()
        raise


def _exit_status(channel: paramiko.Channel) -> str:
    if channel.exit_status_ready():
        code = channel.recv_exit_status()
        channel.close()
        return f", exit status {code}" if code >= 0 else ", killed"
    channel.close()
    return ""


def _start(
    channel: paramiko.Channel,
    host: str,
    python: str,
    timeout_s: float,
    max_threads: int,
    max_frame: int,
    dead_after_s: float,
) -> tuple[paramiko.Channel, FrameChannel, WorkerHello]:
    deadline = time.monotonic() + timeout_s
    channel.settimeout(0.5)
    channel.exec_command(bootstrap_command(python))
    try:
        line = _read_version_line(channel, deadline)
    except TimeoutError:
        channel.close()
        raise ConnectError(f"host {host}: no answer from `{python}` within {timeout_s:g} s") from None
    parts = line.decode(errors="replace").split()
    if len(parts) < 5 or parts[0] != MAGIC:
        stderr = _stderr_tail(channel)
        status = channel.recv_exit_status() if channel.exit_status_ready() else None
        channel.close()
        if status in (126, 127):  # the shell's "not executable" / "not found"
            raise ConnectError(
                f"host {host}: could not start `{python}` there: {stderr or 'no output'}; "
                f"set `python` in [hosts.{host}] to a Python "
                f"{sys.version_info.major}.{sys.version_info.minor} path"
            )
        died = f"exit status {status}" if status is not None and status >= 0 else "no exit status"
        raise WorkerStartError(
            f"host {host}: `{python}` started but ended before the worker ran ({died}): "
            f"{stderr or 'no output'}"
        )
    remote = tuple(int(p) for p in parts[1:4])
    if remote[:2] != tuple(sys.version_info[:2]):
        channel.sendall(b"\n")  # tells the bootstrap to exit without a worker
        channel.close()
        here = "%d.%d.%d" % sys.version_info[:3]
        raise PythonMismatchError(
            f"host {host}: `{python}` is Python {'.'.join(map(str, remote))}, this side runs {here}; "
            f"pickled code needs the same major.minor: set `python` in [hosts.{host}] "
            f"to a Python {sys.version_info.major}.{sys.version_info.minor} on that host"
        )
    source = _worker_source()
    setup = encode_json(
        {
            "cloudpickle": cloudpickle.__version__,
            "max_threads": max_threads,
            "max_frame": max_frame,
            "dead_after": dead_after_s,
        }
    )
    frames = FrameChannel(channel, max_frame)
    # Source and setup in one go: B answers HELLO, then READY, or first asks for cloudpickle.
    channel.sendall(b"%d\n" % len(source) + source + HEADER.pack(FRAME_MAGIC, Kind.SETUP, 0, len(setup)) + setup)
    kind, _, payload = frames.read_frame(deadline)
    if kind != Kind.HELLO:
        raise ConnectError(f"host {host}: worker sent frame {kind} instead of its hello")
    hello = decode_json(payload)
    kind, _, payload = frames.read_frame(deadline)
    if kind == Kind.NEED_MODULES:
        frames.send(Kind.MODULES, 0, encode_json(_cloudpickle_sources()))
        kind, _, payload = frames.read_frame(deadline)
    if kind != Kind.READY:
        raise ConnectError(f"host {host}: worker failed to start (frame {kind}): {_stderr_tail(channel)}")
    ready = decode_json(payload)
    log.debug(
        "worker on %s: pid %s, cloudpickle %s (shipped: %s)",
        host,
        hello["pid"],
        ready["cloudpickle"],
        ready["shipped"],
    )
    return (
        channel,
        frames,
        WorkerHello(
            pid=int(hello["pid"]),
            python=str(hello["python"]),
            executable=str(hello["executable"]),
            cloudpickle_remote=hello.get("cloudpickle"),
            cloudpickle_used=str(ready["cloudpickle"]),
            cloudpickle_shipped=bool(ready["shipped"]),
            platform=str(hello.get("platform", "")),
            hostname=str(hello.get("hostname", "")),
        ),
    )


def _stderr_tail(channel: paramiko.Channel, limit: int = 400) -> str:
    data = b""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if channel.recv_stderr_ready():
            data += channel.recv_stderr(65536)
        elif channel.exit_status_ready() and not channel.recv_stderr_ready():
            break
        else:
            time.sleep(0.02)
    text = data.decode(errors="replace").strip()
    return text[-limit:].replace("\n", " | ")
