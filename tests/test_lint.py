"""The package type-checks strictly (setup.cfg [mypy]) and the code passes flake8 (setup.cfg [flake8])."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(240)
def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="mypy comes with the [test] extra")
    r = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(120)
def test_flake8() -> None:
    pytest.importorskip("flake8", reason="flake8 comes with the [test] extra")
    r = subprocess.run([sys.executable, "-m", "flake8", "wiredprof", "tests", "benchmarks", "samples"],
                       cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
