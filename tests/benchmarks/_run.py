"""Running a benchmark as its users do (`python -m benchmarks.NAME ...`), from the repository."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["REPO", "run_benchmark", "result_of"]

REPO = Path(__file__).resolve().parents[2]


def run_benchmark(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.NAME ARGS` with the repository on the path; bounded by `timeout`."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=timeout)


def result_of(proc: subprocess.CompletedProcess[str], tail: int = 3000) -> Any:
    """The `--json` result of a run that must have succeeded (its stderr's tail when it did not)."""
    assert proc.returncode == 0, proc.stderr[-tail:]
    return json.loads(proc.stdout)
