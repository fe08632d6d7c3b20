"""run_flow as a library call (pytest's own process): the pool's processes end, the caller's own do not."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.proctree._procs import REPO
from wiredprof.proctree import alive
from wiredprof.runner import RunOptions, run_flow


@pytest.mark.slow
def test_pool_flow_in_process_leaves_the_callers_processes_alone():
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        profile = run_flow(REPO / "samples" / "pool_demo_flow.py", [], RunOptions(duration_s=6, call_trees=False))
        assert {s.name for s in profile.stages if s.calls} >= {"http_integers.http_connector", "average.core_logic"}
        assert profile.status == "ok"
        assert alive(mine.pid) and mine.poll() is None
        assert len(profile.flows) == 1 and profile.flows[0].pid != mine.pid
    finally:
        mine.kill()
        mine.wait()
