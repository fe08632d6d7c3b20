"""samples/waiting_flow.py: runs on real wiredflow, and its bottleneck is the waiting storage."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from samples._workload import checksum_work, stable_seed
from samples.waiting_flow import SUMMARY_PREFIX
from tests.samples._run import REPO, SAMPLES, run_sample, sample_env, summary_of

pytest.importorskip("wiredflow")
pytestmark = pytest.mark.slow
BLOCKS = 20


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_runs_both_pipelines(mode: str) -> None:
    args = ["--scale", "0.02", "--seconds", "2", "--core-blocks", str(BLOCKS)]
    if mode == "processes":
        args.append("--processes")
    proc = run_sample("waiting_flow.py", *args, timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(proc.stdout, SUMMARY_PREFIX)
    assert summary["mode"] == mode
    p1, p2 = summary["pipelines"]["pipeline_1"], summary["pipelines"]["pipeline_2"]
    assert p1["storage"] >= 1 and p2["storage"] >= 1
    assert p1["checksums"] == [checksum_work(stable_seed(None), BLOCKS)]


def test_wiredprof_names_the_waiting_storage_as_a_wait_bound_bottleneck() -> None:
    """The sample's purpose: the bottleneck is a stage a faster CPU would not help."""
    proc = subprocess.run(
        [sys.executable, "-m", "wiredprof", "analyze", str(SAMPLES / "waiting_flow.py"), "--duration", "4",
         "--quiet", "--json", "--no-call-tree", "--", "--scale", "0.02", "--core-blocks", str(BLOCKS)],
        cwd=REPO, env=sample_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    profile = json.loads(proc.stdout)
    bottleneck = profile["bottleneck"]
    assert (bottleneck["pipeline"], bottleneck["stage"]) == ("pipeline_1", "storage")
    storage = next(s for s in profile["stages"] if (s["pipeline"], s["stage"]) == ("pipeline_1", "storage"))
    assert storage["cpu_s"] < 0.1 * storage["total_s"], "the storage should only wait"
