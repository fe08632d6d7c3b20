"""Helpers to run a sample in a subprocess, bounded, and read what it reported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def sample_env(**extra: str) -> dict[str, str]:
    """The environment for a sample: repo importable, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_sample(name: str, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run samples/`name` with `args`; kill it past `timeout` seconds (the test then fails)."""
    return subprocess.run(
        [sys.executable, str(SAMPLES / name), *args],
        cwd=REPO,
        env=sample_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary_of(stdout: str, prefix: str) -> dict[str, Any]:
    """The JSON object on the line of `stdout` that starts with `prefix`."""
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one summary line, got: {stdout!r}"
    result: dict[str, Any] = json.loads(lines[0][len(prefix):])
    return result


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
