"""Processes a test started, found by a tag in their environment (inherited by every descendant,
even one that left the process group or was re-parented to init), and the CLI run in a session of its own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TAG = "WIREDPROF_TEST_TAG"


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `tag`."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b") ", 1)[1][:1]
        except (OSError, IndexError):
            continue
        if needle in env.split(b"\0") and state != b"Z":
            found.append(int(name))
    return found


def kill_tagged(tag: str) -> list[int]:
    """SIGKILL whatever carries `tag` (a test's clean-up); returns what was still there."""
    left = tagged(tag)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def tagged_after(tag: str, within_s: float = 5.0) -> list[int]:
    """What still carries `tag` once `within_s` has passed (or as soon as nothing does)."""
    end = time.monotonic() + within_s
    while True:
        left = tagged(tag)
        if not left or time.monotonic() >= end:
            return left
        time.sleep(0.1)


def cli(args: list[str], tag: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """`wiredprof ARGS` in a session of its own (so a test can signal its whole group, as a terminal does)."""
    full_env = {**os.environ, TAG: tag, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-m", "wiredprof", *args],
        cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """Wait for the CLI (killing its group past `timeout`: the test then fails on the code)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return -9, out, err
    return proc.returncode, out, err


def wait_for_file(path: Path, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size > 0:
            return True
        time.sleep(0.05)
    return False


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
