"""samples/storages_flow.py: four flows launched one after another, as wiredflow's storage examples do."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.samples._run import SAMPLES

pytest.importorskip("wiredflow")
pytestmark = pytest.mark.slow


def test_without_a_workdir_its_storages_leave_nothing_behind(tmp_path: Path) -> None:
    """Each run once left a /tmp/storages-flow-* directory with four flows' files in it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "wiredprof", "analyze", str(SAMPLES / "storages_flow.py"), "--quiet", "--json",
         "--", "--seconds", "3"],
        cwd=tmp_path, env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile = json.loads(proc.stdout)
    assert sum(s["calls"] for s in profile["stages"] if s["stage"] == "storage") >= 4  # it did store
    assert not list(scratch.glob("storages-flow-*")), list(scratch.iterdir())
