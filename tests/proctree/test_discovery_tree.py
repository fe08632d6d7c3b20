"""Discovery (offload's preflight) on flows launched in a pool worker: stages named, nothing left behind."""
from __future__ import annotations

import os
import time

import pytest

from tests.proctree._procs import REPO, TAG, tagged_after
from wiredprof.discovery import discover_stages
from wiredprof.errors import FlowFileError

POOL_DEMO = REPO / "samples" / "pool_demo_flow.py"
NEVER = REPO / "tests" / "flows" / "pool_never_launches.py"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("flow_args", [[], ["--start-method", "spawn"], ["--processes"]],
                         ids=["pool-fork", "pool-spawn", "processes"])
def test_discovery_names_the_stages_of_a_flow_launched_in_a_pool_worker(tag, flow_args, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    names = {s.full for s in discover_stages(POOL_DEMO, flow_args, timeout_s=90)}
    assert {"http_integers.http_connector", "http_integers.storage", "average.core_logic", "average.send"} <= names
    assert not tagged_after(tag), "discovery left processes behind"
    # Stopped as by a Ctrl-C: the script's own temporary directory went with it.
    assert not list(tmp_path.glob("pool-demo-*")), list(tmp_path.iterdir())


def test_discovery_that_times_out_leaves_no_process_behind(tag):
    started = time.monotonic()
    with pytest.raises(FlowFileError, match="did not reach launch_flow within 4 s"):
        discover_stages(NEVER, [], timeout_s=4)
    assert time.monotonic() - started < 4 + 20
    assert not tagged_after(tag), "discovery left processes behind"
    assert os.environ[TAG] == tag
