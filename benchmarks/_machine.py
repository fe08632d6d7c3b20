"""The machine a benchmark ran on, for its report: CPU, memory, versions, load average."""
from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import wiredprof

__all__ = ["machine_info", "loadavg", "package_version"]

REPO = Path(__file__).resolve().parent.parent


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages ([] where /proc has none)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def package_version(dist: str) -> str:
    """The installed version of distribution `dist`, or "not installed"."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(packages: Sequence[str], **extra: Any) -> dict[str, Any]:
    """CPU (count, usable by us, model), memory, kernel, Python, wiredprof's commit, `packages`' versions,
    the date and the load average now; `extra` is added as it is."""
    model = "unknown"
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        mem = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                       if x.startswith("MemTotal:")).split()[1]) * 1024
    except (OSError, StopIteration):
        mem = 0
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "cpus": os.cpu_count(), "nproc": len(os.sched_getaffinity(0)), "cpu_model": model, "memory_bytes": mem,
        "kernel": platform.release(), "platform": platform.platform(terse=True),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wiredprof": f"{wiredprof.__version__} (git {commit})",
        "packages": {name: package_version(name) for name in packages},
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": loadavg(),
        **extra,
    }
