"""wiredprof on flows launched the way wiredflow's demos launch them: in a pool worker, beside a mock server.

Every test runs the real CLI on the real samples (real wiredflow) in a session of its own,
and checks by an environment tag that no process it started is left afterwards.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.proctree._procs import REPO, cli, finish, load, tagged_after

POOL_DEMO = str(REPO / "samples" / "pool_demo_flow.py")
STORAGES = str(REPO / "samples" / "storages_flow.py")
STAGES = {"http_integers.http_connector", "http_integers.storage", "average.core_logic", "average.send"}

pytestmark = pytest.mark.slow


def _stages_called(profile: dict) -> set[str]:
    return {f"{s['pipeline']}.{s['stage']}" for s in profile["stages"] if s["calls"] + s["sampled_calls"] > 0}


def _wait_for_text(path: Path, text: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("flow_args", [[], ["--start-method", "spawn"], ["--start-method", "forkserver"]],
                         ids=["fork", "spawn", "forkserver"])
def test_stages_of_a_flow_in_a_pool_worker_are_seen_and_duration_holds(tmp_path, tag, flow_args):
    duration = 10  # spawn and forkserver take seconds to start on a loaded machine
    started = time.monotonic()
    proc = cli(["analyze", POOL_DEMO, "--duration", str(duration), "-q", "--flow-log", str(tmp_path / "flow.log"),
                "-o", str(tmp_path / "p.json"), "--", *flow_args], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    wall = time.monotonic() - started
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "ok"
    assert profile["mode"] == "threads"
    # The flow ran in a pool worker (another process), and its every stage was recorded here.
    assert [f["pid"] != proc.pid for f in profile["flows"]] == [True]
    assert _stages_called(profile) == STAGES
    # The mock server in the other worker would serve for ever: the run still ends near --duration.
    assert wall < duration + 30
    assert not tagged_after(tag), "processes left behind"


def test_process_mode_flow_beside_its_mock_server_is_bounded(tmp_path, tag):
    duration = 8
    started = time.monotonic()
    proc = cli(["analyze", POOL_DEMO, "--duration", str(duration), "-q", "--flow-log", str(tmp_path / "flow.log"),
                "-o", str(tmp_path / "p.json"), "--", "--processes"], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    wall = time.monotonic() - started
    profile = load(tmp_path / "p.json")
    assert profile["mode"] == "processes"
    assert STAGES <= _stages_called(profile)
    # The mock server is a stage that never returns: it is ended after the grace period.
    assert profile["status"] == "stopped" and code == 0, err
    assert any("did not stop at the deadline" in n for n in profile["notes"])
    assert wall < duration + max(5, duration / 2) + 30
    assert not tagged_after(tag), "processes left behind"


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_flow_keeps_the_profile_and_exits_128_plus_it(tmp_path, tag, mode, signum):
    log = tmp_path / "flow.log"
    args = ["--processes"] if mode == "processes" else []
    proc = cli(["analyze", POOL_DEMO, "--duration", "120", "-q", "--flow-log", str(log),
                "-o", str(tmp_path / "p.json"), "--", *args], tag, tmp_path)
    try:
        assert _wait_for_text(log, "average: {", timeout=60), "the flow never completed a cycle"
        sent = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # Ctrl-C in a terminal: the whole foreground group
        else:
            os.kill(proc.pid, signum)  # `kill PID`: wiredprof only
        code, out, err = finish(proc, timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 128 + signum, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "stopped"
    assert profile["stopped_by"] == signal.Signals(signum).name
    assert STAGES <= _stages_called(profile)
    # The state sampler has a session of its own: a group Ctrl-C does not take its figures away.
    assert profile["missing"] == {}
    assert took < 20  # generous: the flow is told at once and ended 2 s later at the latest
    assert not tagged_after(tag), "processes left behind"


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_several_flows_of_one_script_are_kept_apart(tmp_path, tag, mode):
    args = ["--processes"] if mode == "processes" else []
    proc = cli(["analyze", STORAGES, "--duration", "120", "-q", "--flow-log", str(tmp_path / "flow.log"),
                "-o", str(tmp_path / "p.json"), "--json", "--html", str(tmp_path / "p.html"), "--", "--seconds", "2",
                *args], tag, tmp_path)
    code, out, err = finish(proc, timeout=180)
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert [f["number"] for f in profile["flows"]] == [1, 2, 3, 4]
    assert {f["mode"] for f in profile["flows"]} == {mode}
    names = [f["pipelines"][0] for f in profile["flows"]]
    assert names == ["http_integers", "http_integers#2", "http_integers#3", "http_integers#4"]
    by_flow = {(s["flow"], f"{s['pipeline']}.{s['stage']}") for s in profile["stages"] if s["calls"]}
    assert {n for n, _ in by_flow} == {1, 2, 3, 4}
    assert (2, "http_integers#2.storage") in by_flow
    assert sorted({p["flow"] for p in profile["pipelines"]}) == [1, 2, 3, 4]
    html = (tmp_path / "p.html").read_text()
    assert "flow #4" in html
    assert not tagged_after(tag), "processes left behind"


@pytest.mark.parametrize("flow_args", [[], ["--spawn"]], ids=["fork", "spawn"])
def test_runs_reach_a_flow_in_a_concurrent_futures_worker(tmp_path, tag, flow_args):
    proc = cli(["analyze", str(REPO / "tests" / "flows" / "futures_flow.py"), "--runs", "3", "-q",
                "-o", str(tmp_path / "p.json"), "--flow-log", str(tmp_path / "flow.log"), "--", *flow_args],
               tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "ok"
    assert [(p["name"], p["runs"]) for p in profile["pipelines"]] == [("polling", 3)]
    assert {s["stage"]: s["calls"] + s["sampled_calls"] for s in profile["stages"]} == {
        "http_connector": 3, "storage": 3}
    assert not tagged_after(tag), "processes left behind"


def test_a_pool_worker_that_ignores_sigterm_does_not_hang_the_run(tmp_path, tag):
    duration = 4
    started = time.monotonic()
    proc = cli(["analyze", str(REPO / "tests" / "flows" / "pool_stubborn.py"), "--duration", str(duration), "-q",
                "-o", str(tmp_path / "p.json"), "--flow-log", str(tmp_path / "flow.log")], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    assert code == 0, err
    assert time.monotonic() - started < duration + 40
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "ok"
    assert {s["stage"] for s in profile["stages"] if s["calls"]} == {"http_connector"}
    assert not tagged_after(tag), "processes left behind"
