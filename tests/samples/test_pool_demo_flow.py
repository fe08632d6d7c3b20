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


@pytest.mark.parametrize("mode", [[], ["--processes"]], ids=["threads", "processes"])
def test_without_a_workdir_its_storage_leaves_nothing_behind(mode: list[str], tmp_path: Path) -> None:
    """Each run once left a /tmp/pool-demo-* directory with its JSON storage (35 after a day of tests)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "wiredprof", "analyze", str(SAMPLES / "pool_demo_flow.py"), "--runs", "2", "--quiet",
         "--json", "--", "--seconds", "10", *mode],  # the mock API's pipeline serves its whole first cycle
        cwd=tmp_path, env={**os.environ, "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = {f"{s['pipeline']}.{s['stage']}": s["calls"] for s in json.loads(proc.stdout)["stages"]}
    assert calls["http_integers.storage"] >= 1, calls  # it did store, in a directory of its own
    assert not list(scratch.glob("pool-demo-*")), list(scratch.iterdir())
