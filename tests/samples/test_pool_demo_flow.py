"""samples/pool_demo_flow.py copied out of the repository, as a user copies wiredflow's demo: its
stages run in pool workers (fork, spawn, forkserver) and are seen (issue 9)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.samples._run import SAMPLES

pytest.importorskip("wiredflow")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_copy_outside_the_repository_shows_its_stages(method: str, tmp_path: Path) -> None:
    flow = tmp_path / "pool_demo_flow.py"
    shutil.copy(SAMPLES / "pool_demo_flow.py", flow)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing points at the repository
    # --runs, not --duration: a spawned worker boots in seconds on a loaded machine.
    proc = subprocess.run(
        [sys.executable, "-m", "wiredprof", "analyze", flow.name, "--runs", "2", "--quiet", "--json", "--",
         "--seconds", "60", "--start-method", method, "--workdir", str(tmp_path / "data")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile = json.loads(proc.stdout)
    calls = {f"{s['pipeline']}.{s['stage']}": s["calls"] + s["sampled_calls"] for s in profile["stages"]}
    assert calls["http_integers.http_connector"] >= 2 and calls["average.core_logic"] >= 2, calls
