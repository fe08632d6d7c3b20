"""Core wait on a real wiredflow flow beside CPU hogs (one busy process per core), against the
run delay each stage call read from the kernel itself (tests/flows/core_wait_flow.py).

Stages of ~0.1 ms are shorter than any tick of the thread-state sampler: their core wait is
"not measurable" (None, "n/m"), never a number (prorated or taken from one running sample, it
came out several times what their calls really queued). A stage of ~0.3 s CPU is measured, and
agrees with what its calls counted.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.proctree._procs import REPO, cli, finish, load, tagged_after
from tests.proctree.conftest import tag  # noqa: F401 - the fixture: no process of the test left behind

FLOW = str(REPO / "tests" / "flows" / "core_wait_flow.py")
TICK_S = 0.02  # the sampler's shortest interval: a call shorter than this never covers a whole tick

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"),
                                                   reason="needs Linux schedstat")]


def _truth(path: Path) -> dict[str, list[float]]:
    """Each stage function's calls' run delays (seconds), as the calls read them."""
    out: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().split("\n"):
        if line.strip():
            name, ns = line.split()
            out[name].append(int(ns) / 1e9)
    return out


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_core_wait_is_measured_or_not_measurable_never_overstated(tmp_path, tag, mode):  # noqa: F811
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        truth_file = tmp_path / "truth.txt"
        proc = cli(["analyze", FLOW, "--duration", "8", "--no-call-tree", "-o", str(tmp_path / "p.json"),
                    "--flow-log", str(tmp_path / "flow.log"), "--", *(["--processes"] if mode == "processes" else [])],
                   tag, tmp_path, CORE_WAIT_TRUTH=str(truth_file))
        code, out, err = finish(proc, timeout=180)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    stages = {f"{s['pipeline']}.{s['stage']}": s for s in profile["stages"]}
    truth = _truth(truth_file)

    short = [s for s in stages.values() if s["calls"] and s["max_s"] < TICK_S]
    assert short, "no sub-tick stage to check (every call of every short stage stalled)"
    for s in short:
        assert s["cpu_queue_s"] is None, (s["pipeline"], s["stage"], s["cpu_queue_s"])
    assert "n/m" in out and "core wait n/m: not measurable" in out

    heavy = stages["heavy.core_logic"]
    assert heavy["calls"] >= 2 and heavy["cpu_queue_s"] is not None
    reported = heavy["cpu_queue_s"] / heavy["calls"]
    counted = sum(truth["compute"]) / len(truth["compute"])
    assert counted > 0.02, "the hogs did not make the heavy stage queue at all"
    assert reported == pytest.approx(counted, rel=0.25, abs=0.02), (reported, counted)
    assert not tagged_after(tag), "processes left behind"
