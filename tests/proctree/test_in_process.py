"""run_flow as a library call in the caller's own process: the pool's processes end, the caller's own do not.

The caller is a fresh interpreter, not pytest's process: the pool forks its caller, and a fork of a
process that other tests left threads in (a Dask client's event loop, say) can inherit a lock held
by one of them and hang (seen once in a whole-suite run).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.proctree._procs import REPO

CALLER = """
import json, subprocess, sys
from pathlib import Path
from wiredprof.proctree import alive
from wiredprof.runner import RunOptions, run_flow

mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
try:
    profile = run_flow(Path(sys.argv[1]), [], RunOptions(duration_s=6, call_trees=False))
    print(json.dumps({
        "stages": sorted(s.name for s in profile.stages if s.calls), "status": profile.status,
        "mine_alive": alive(mine.pid) and mine.poll() is None,
        "flow_pids": [f.pid for f in profile.flows], "mine": mine.pid,
    }))
finally:
    mine.kill()
    mine.wait()
"""


@pytest.mark.slow
def test_pool_flow_in_process_leaves_the_callers_processes_alone() -> None:
    proc = subprocess.run([sys.executable, "-c", CALLER, str(REPO / "samples" / "pool_demo_flow.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(seen["stages"]) >= {"http_integers.http_connector", "average.core_logic"}, seen
    assert seen["status"] == "ok"
    assert seen["mine_alive"]
    assert len(seen["flow_pids"]) == 1 and seen["flow_pids"][0] != seen["mine"]
