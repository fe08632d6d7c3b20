"""`--duration` counts from the flow's first `launch_flow`, in whichever process it happens; a flow
that never gets there is ended at the start limit with one line and exit 2, nothing saved.

Every test runs the real CLI on real wiredflow flows in a session of its own, and checks by an
environment tag that no process it started is left afterwards.
"""
from __future__ import annotations

import pytest

from tests.proctree._procs import REPO, cli, finish, load, tagged_after

SLOW_START = str(REPO / "tests" / "flows" / "slow_start.py")
POOL_DEMO = str(REPO / "samples" / "pool_demo_flow.py")
NEVER = str(REPO / "tests" / "flows" / "pool_never_launches.py")

pytestmark = pytest.mark.slow


def _called(profile: dict) -> dict[str, int]:
    return {f"{s['pipeline']}.{s['stage']}": s["calls"] + s["sampled_calls"] for s in profile["stages"]}


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_start_up_longer_than_the_duration_is_timed_apart(tmp_path, tag, mode):
    # 4 s of start-up against --duration 3: counted from the process start, the flow would be
    # stopped before its first stage ("no pipeline stage was seen", exit 2).
    warmup, duration = 4, 3
    args = ["--processes"] if mode == "processes" else []
    proc = cli(["analyze", SLOW_START, "--duration", str(duration), "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log"), "--", "--warmup", str(warmup), *args], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "ok" and profile["mode"] == mode
    assert profile["startup_s"] >= warmup  # the sleep before launch_flow, as its own figure
    assert profile["flows"][0]["start_s"] >= profile["startup_s"]
    assert profile["wall_s"] > profile["startup_s"] + 0.5 * duration  # then the flow ran for its duration
    called = _called(profile)
    assert called["polling.http_connector"] >= 2 and called["polling.storage"] >= 2, called
    # The pipeline's utilisation is over the time it ran, not the start-up too.
    busy = profile["pipelines"][0]
    running = profile["wall_s"] - profile["startup_s"]
    assert busy["utilisation"] == pytest.approx(busy["wall_s"] * busy["runs"] / running, rel=0.05)
    # The progress line (not a terminal: its first line) said the run was waiting for the flow,
    # and the report names the start-up beside the wall time.
    assert "wiredprof: starting" in err and "waiting for the flow to start its pipelines, at most 60 s" in err
    assert "(start-up " in out
    assert not tagged_after(tag), "processes left behind"


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_pool_workers_start_up_does_not_eat_the_duration(tmp_path, tag, method):
    # The flow is launched in a spawned (forkserver) pool worker, which takes seconds to start
    # on a loaded machine; with --duration 5 every stage still runs, and the start-up is shown.
    proc = cli(["analyze", POOL_DEMO, "--duration", "5", "-q", "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log"), "--", "--start-method", method], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "ok"
    assert all(n > 0 for n in _called(profile).values()), _called(profile)
    assert 0 < profile["startup_s"] <= profile["flows"][0]["start_s"]
    assert not tagged_after(tag), "processes left behind"


def test_a_flow_that_never_starts_its_pipelines_ends_at_the_start_limit(tmp_path, tag):
    proc = cli(["analyze", NEVER, "--duration", "2", "--start-limit", "3", "-q", "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log")], tag, tmp_path)
    code, out, err = finish(proc, timeout=120)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "never started its pipelines within 3 s" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "p.json").exists()  # nothing saved that would mislead
    assert not (tmp_path / ".wiredprof" / "last-profile.json").exists()
    assert not tagged_after(tag), "processes left behind"


def test_a_bad_start_limit_is_one_line_and_exit_2(tmp_path, tag):
    proc = cli(["analyze", SLOW_START, "--start-limit", "soon"], tag, tmp_path)
    code, out, err = finish(proc, timeout=60)
    assert code == 2 and err.strip() == "wiredprof: error: --start-limit must be a number of seconds, not 'soon'"
