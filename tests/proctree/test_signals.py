"""Ctrl-C on a flow whose stage will not return, a second Ctrl-C, and a state sampler that dies."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.proctree._procs import REPO, cli, finish, load, tagged, tagged_after
from wiredprof.runner import STOP_GRACE_S

STUCK = str(REPO / "tests" / "flows" / "wiredflow_stuck.py")
POOL_DEMO = str(REPO / "samples" / "pool_demo_flow.py")

pytestmark = pytest.mark.slow


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _wait_until_stage_runs(log: Path, timeout: float = 60) -> None:
    """Until the flow's `stuck` pipeline is inside its hanging core logic."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and 'Launch pipeline "stuck"' in log.read_text(errors="replace"):
            time.sleep(1.0)  # delay_seconds=0: the core logic is called at once
            return
        time.sleep(0.1)
    raise AssertionError("the flow did not start")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_ctrl_c_ends_a_flow_stuck_in_a_stage_soon_with_its_profile(tmp_path, tag, mode):
    args = ["--processes"] if mode == "processes" else []
    proc = cli(["analyze", STUCK, "--duration", "120", "-q", "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log"), "--", *args], tag, tmp_path)
    _wait_until_stage_runs(tmp_path / "flow.log")
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    code, out, err = finish(proc, timeout=60)
    took = time.monotonic() - sent
    assert code == 130, err
    profile = load(tmp_path / "p.json")
    assert profile["status"] == "stopped" and profile["stopped_by"] == "SIGINT"
    assert any(s["calls"] for s in profile["stages"] if s["pipeline"] == "quick")
    # The core logic sleeps 60 s: the run did not wait for it.
    assert took < 30
    assert not tagged_after(tag), "processes left behind"


def test_a_second_ctrl_c_exits_at_once(tmp_path, tag):
    proc = cli(["analyze", STUCK, "--duration", "120", "-q", "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log")], tag, tmp_path)
    _wait_until_stage_runs(tmp_path / "flow.log")
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    code, out, err = finish(proc, timeout=60)
    took = time.monotonic() - sent
    assert code == 130, err
    assert "interrupted again" in err
    # It did not wait for the flow (the first Ctrl-C alone gives it STOP_GRACE_S, then reports):
    # no profile was written, and it was quick even on a loaded machine.
    assert not (tmp_path / "p.json").exists()
    assert took < STOP_GRACE_S + 8
    assert not tagged_after(tag), "processes left behind"


def test_a_dead_state_sampler_is_named_in_the_profile(tmp_path, tag):
    proc = cli(["analyze", POOL_DEMO, "--duration", "10", "-q", "-o", str(tmp_path / "p.json"),
                "--flow-log", str(tmp_path / "flow.log")], tag, tmp_path)
    sampler = None
    end = time.monotonic() + 30
    while sampler is None and time.monotonic() < end:
        sampler = next((p for p in tagged(tag) if "wiredprof.profiling.statesampler" in _cmdline(p)), None)
        time.sleep(0.1)
    assert sampler is not None, "no state sampler process"
    time.sleep(2)
    os.kill(sampler, signal.SIGKILL)
    code, out, err = finish(proc, timeout=120)
    assert code == 0, err
    profile = load(tmp_path / "p.json")
    assert profile["missing"], profile["notes"]
    (what, why), = profile["missing"].items()
    assert "gil wait" in what and "SIGKILL" in why
    shown = cli(["show", str(tmp_path / "p.json")], tag, tmp_path)
    code, out, err = finish(shown, timeout=60)
    assert "Missing figures:" in out and "SIGKILL" in out
