"""benchmarks/provision.py runs end to end in its quick mode (tabulate) and writes its report; no time is checked."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks._run import run_benchmark

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(600)]


def test_quick_run_writes_its_report(tmp_path: Path) -> None:
    report = tmp_path / "provision.md"
    r = run_benchmark("provision", "--quick", "--report", str(report), timeout=580)
    assert r.returncode == 0, r.stderr[-2000:]
    text = report.read_text()
    for case in ("cold, B's index", "cold, offline (wheels from A)", "by hand: ssh venv + pip install",
                 "warm no-op, open connection", "stage result on B equals here: True"):
        assert case in text, text
