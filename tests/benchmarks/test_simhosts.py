"""Hosts A (cgroup with a CPU quota) and B (sshd in a network namespace) come up, work, and go away.

Real root-only plumbing: skipped when not root, failing (not skipped) when root but the
machine refuses, so CI notices. Timings are compared as ratios, never as absolute times.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from benchmarks import simhosts
from benchmarks.simhosts import SimHosts, SimHostsUnavailable, cleanup_stale, measure_speed_ratio

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.ssh,
    pytest.mark.skipif(os.geteuid() != 0, reason="simulating hosts needs root (netns, veth, cgroups)"),
]


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _pid_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_b_answers_over_ssh_a_is_slower_and_everything_is_removed() -> None:
    hosts = SimHosts(calibrate=True, calibration={"probe_s": 0.2, "repeats": 2, "rounds": 2})
    with hosts:
        b = hosts.b
        netns, veth, sshd_pid, tmpdir = b.netns, b.veth_host, b.sshd_pid, b.tmpdir
        a_paths = list(hosts.a.paths.values())
        assert _netns_exists(netns) and _link_exists(veth) and sshd_pid and _pid_running(sshd_pid)
        assert all(p.is_dir() for p in a_paths)

        # The round trip wiredprof relies on: OpenSSH client, our key, our known_hosts, B's address.
        cmd = ["ssh", "-i", str(b.identity), "-o", f"UserKnownHostsFile={b.known_hosts}",
               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(b.port),
               f"root@{b.address}", "python3", "-c", "'print(1)'"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "1"
        # The ssh_config alias works too, and B really is in its own network namespace.
        proc = subprocess.run(["ssh", "-F", str(b.ssh_config), b.host_alias, "readlink /proc/self/ns/net"],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() != os.readlink("/proc/self/ns/net")

        # B's processes are not in A's cgroup, and nothing throttles them; a process in A is.
        assert sshd_pid not in hosts.a.pids()
        assert b.cpu_limits() == []
        sleeper = hosts.a.popen(["sleep", "30"])
        try:
            assert sleeper.pid in hosts.a.pids()
            assert any(str(hosts.a.quota_us) in lim for lim in simhosts._cpu_limits_of(sleeper.pid))
        finally:
            sleeper.kill()
            sleeper.wait()

        # Calibration ran, bounded, and measured something.
        cal = hosts.calibration
        assert cal is not None and 1 <= len(cal.rounds) <= 2 and cal.ratio > 1.5

        # A process in A's cgroup is slower than the same work on B (fastest of 5 on each side,
        # as other load on a shared machine only adds time).
        throttled_before = hosts.a.cpu_stats()["nr_throttled"]
        ratio = measure_speed_ratio(hosts, repeats=5, probe_s=0.2)
        assert len(ratio.a_s) == len(ratio.b_s) == 5
        assert hosts.a.cpu_stats()["nr_throttled"] > throttled_before  # the quota, not luck
        # The speed claim only where it can hold: when other load leaves B less than two thirds of a
        # core (contention >= 1.5), B is throttled by its neighbours as much as A by its quota (seen:
        # ratio 1.10-1.35 at contention 3.4), and the quota's effect is what nr_throttled proved above.
        if ratio.contention < 1.5:
            assert ratio.ratio_of_fastest > 1.5, ratio.to_dict()

        table = tomllib.loads(b.inventory_toml())["hosts"]["B"]
        assert table["address"] == f"root@{b.address}:{b.port}" and Path(table["known_hosts"]).is_file()

        info = hosts.info
        assert info.b_address == b.address and info.cpu_quota_us == hosts.a.quota_us
        assert info.describe().startswith("A and B are simulated on one machine")
        json.dumps(info.to_dict())

    # Everything is gone.
    assert not _netns_exists(netns)
    assert not _link_exists(veth)
    assert not _pid_running(sshd_pid)
    assert tmpdir is not None and not tmpdir.exists()
    assert not any(p.exists() for p in a_paths)
    hosts.stop()  # idempotent


def test_a_memory_limit_stops_a_stage_above_it() -> None:
    limit = 64 * 2**20
    with SimHosts(calibrate=False, memory_limit_bytes=limit) as hosts:
        before = hosts.a.memory_stats()
        hog = "b = bytearray(160 * 2**20); b[::4096] = b'x' * len(b[::4096])"
        big = hosts.a.run([sys.executable, "-c", hog], capture_output=True, timeout=60)
        outcome = hosts.a.memory_outcome(big.returncode, before)
        assert big.returncode != 0
        assert outcome.startswith(("killed", "failed", "swapped")), outcome
        small = hosts.a.run([sys.executable, "-c", "b = bytearray(8 * 2**20)"],
                            capture_output=True, timeout=60)
        assert small.returncode == 0
        assert hosts.a.memory_outcome(small.returncode) == "completed within the limit"
        assert "limits memory to 64 MiB" in hosts.describe()


CRASH = """
import json, os, signal
from benchmarks.simhosts import SimHosts
h = SimHosts(calibrate=False).start()
for p in h.a.paths.values():  # as reference.PerProcessCpu makes them: one cgroup per process of A
    os.mkdir(os.path.join(p, "p1"))
print(json.dumps({"netns": h.b.netns, "veth": h.b.veth_host, "sshd": h.b.sshd_pid,
                  "tmp": str(h.b.tmpdir), "cgroups": [str(p) for p in h.a.paths.values()]}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no context manager: a crash
"""


def test_leftovers_of_a_crashed_run_are_removed() -> None:
    proc = subprocess.run([sys.executable, "-c", CRASH], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -9, proc.stderr
    left = json.loads(proc.stdout.strip().splitlines()[-1])
    assert _netns_exists(left["netns"]) and _pid_running(left["sshd"])

    removed = cleanup_stale()

    assert any(left["netns"] in r for r in removed), removed
    assert not _netns_exists(left["netns"])
    assert not _link_exists(left["veth"])
    assert not _pid_running(left["sshd"])
    assert not Path(left["tmp"]).exists()
    assert not any(Path(p).exists() for p in left["cgroups"])


def test_refuses_in_one_line_without_root(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert simhosts._main(["check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0]
    with pytest.raises(SimHostsUnavailable, match="needs root"):
        SimHosts(calibrate=False).start()
    monkeypatch.undo()
    with pytest.raises(SimHostsUnavailable, match="openssh-server"):
        simhosts.HostB(sshd="/nonexistent/sshd").start()


TERM = """
import json, sys, time
from benchmarks.simhosts import SimHosts
with SimHosts(calibrate=False) as h:
    print(json.dumps({"netns": h.b.netns, "veth": h.b.veth_host, "sshd": h.b.sshd_pid,
                      "tmp": str(h.b.tmpdir), "cgroups": [str(p) for p in h.a.paths.values()]}), flush=True)
    time.sleep(60)
"""


def test_sigterm_removes_everything() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TERM], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None
        left = json.loads(proc.stdout.readline())
        assert _netns_exists(left["netns"])
        proc.terminate()
        assert proc.wait(timeout=30) == 128 + 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _netns_exists(left["netns"])
    assert not _link_exists(left["veth"])
    assert not _pid_running(left["sshd"])
    assert not Path(left["tmp"]).exists()
    assert not any(Path(p).exists() for p in left["cgroups"])
