"""samples/reference_flow.py on real wiredflow, mosquitto and HTTP on loopback, at a tiny scale."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from samples._workload import checksum_work, stable_seed
from samples.reference_flow import SUMMARY_PREFIX
from tests.samples._run import REPO, SAMPLES, pid_alive, run_sample, sample_env, summary_of

pytest.importorskip("wiredflow")
pytestmark = pytest.mark.slow

BLOCKS = 30  # fixed core work: fast, and the checksum is known in advance


def _broker_pid(stderr: str) -> int:
    match = re.search(r"mosquitto pid (\d+) on 127\.0\.0\.1:\d+", stderr)
    assert match, f"the sample did not report its broker: {stderr[-2000:]!r}"
    return int(match.group(1))


def _check_all_pipelines_ran(summary: dict[str, Any], mode: str) -> None:
    assert summary["mode"] == mode
    p1, p2, p3 = (summary["pipelines"][f"pipeline_{i}"] for i in (1, 2, 3))
    assert p1["http_requests"] >= 1 and p1["storage"] >= 1
    assert p2["mqtt_published"] >= 1 and p2["storage"] >= 1, "no MQTT message reached the storage"
    assert p3["send"] >= 1 and p3["storage"] >= 1 and p3["send_2"] >= 1
    expected = checksum_work(stable_seed(None), BLOCKS)
    for out in p3["core_outputs"]:
        assert out["blocks"] == BLOCKS
        assert out["checksum"] == expected
        assert isinstance(out["upstream_records"], int), "core logic did not read pipeline_1's storage"


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_all_three_pipelines_run_and_the_broker_is_stopped(mode: str, tmp_path: Path) -> None:
    args = ["--scale", "0.01", "--seconds", "5", "--core-blocks", str(BLOCKS), "--workdir", str(tmp_path)]
    if mode == "processes":
        args.append("--processes")
    proc = run_sample("reference_flow.py", *args, timeout=40)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_all_pipelines_ran(summary_of(proc.stdout, SUMMARY_PREFIX), mode)
    assert not pid_alive(_broker_pid(proc.stderr)), "mosquitto outlived the sample"
    assert (tmp_path / "pipeline_2.storage.jsonl").read_text().count('"sequence"') >= 1


def test_calibrates_core_logic_when_not_given(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    proc = run_sample("reference_flow.py", "--scale", "0.005", "--seconds", "3", "--summary-json", str(out),
                      timeout=40)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary == summary_of(proc.stdout, SUMMARY_PREFIX)
    assert summary["core_blocks"] >= 1
    # The calibration predicts 60 s x scale of CPU; the work is sized from it.
    assert summary["core_cpu_s_calibrated"] == pytest.approx(60 * 0.005, rel=0.05)
    outputs = summary["pipelines"]["pipeline_3"]["core_outputs"]
    assert outputs and outputs[0]["checksum"] == checksum_work(stable_seed(None), summary["core_blocks"])


def test_missing_mosquitto_says_what_to_install() -> None:
    proc = run_sample("reference_flow.py", "--scale", "0.01", "--seconds", "2", timeout=20,
                      WIREDPROF_MOSQUITTO="/nonexistent/mosquitto")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "apt-get install mosquitto" in lines[0]
    assert "/nonexistent/mosquitto" in lines[0]
    assert proc.stdout == ""


def test_bad_scale_is_a_usage_error() -> None:
    proc = run_sample("reference_flow.py", "--scale", "-1", timeout=20)
    assert proc.returncode == 2
    assert "--scale" in proc.stderr and "Traceback" not in proc.stderr


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_sigterm_stops_the_broker_and_the_pipelines(mode: str, tmp_path: Path) -> None:
    errfile = tmp_path / "stderr.txt"
    extra = ["--processes"] if mode == "processes" else []
    with open(errfile, "w") as err:
        proc = subprocess.Popen(
            # A long core logic (~30 s): only a deliberate stop ends its process in time.
            [sys.executable, str(SAMPLES / "reference_flow.py"), "--scale", "0.01", "--seconds", "60",
             "--core-blocks", "20000", *extra],
            cwd=REPO, env=sample_env(), stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        deadline = time.monotonic() + 15
        while "mosquitto pid" not in errfile.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, errfile.read_text()[-2000:]
            time.sleep(0.1)
        broker = _broker_pid(errfile.read_text())
        time.sleep(1.5)  # let the pipelines get going
        children = _children(proc.pid)
        if mode == "processes":
            assert len(children) >= 4, "expected mosquitto, the manager and three pipeline processes"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in [broker, *children]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(broker), "mosquitto outlived the terminated sample"
        assert not [p for p in children if pid_alive(p)], "a child process outlived the terminated sample"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
