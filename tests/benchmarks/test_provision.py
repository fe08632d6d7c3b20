"""benchmarks/provision.py runs end to end in its quick mode (tabulate) and writes its report; no time is checked."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(600)]


def test_quick_run_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "provision.md"
    r = subprocess.run([sys.executable, "-m", "benchmarks.provision", "--quick", "--report", str(report)],
                       cwd=ROOT, capture_output=True, text=True, timeout=580,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    text = report.read_text()
    for case in ("cold, B's index", "cold, offline (wheels from A)", "by hand: ssh venv + pip install",
                 "warm no-op, open connection", "stage result on B equals here: True"):
        assert case in text, text
