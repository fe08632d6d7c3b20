"""Probe results: the planner's contract (schema, fields), and a real probe over sshd."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from wiredprof.errors import ConfigError
from wiredprof.remote import connect
from wiredprof.remote.probe import (
    ROUND_CPU_S,
    SCHEMA,
    SpeedRounds,
    ProbeResult,
    cpu_loop_seconds,
    cpu_loop_times,
    host_facts,
    busy_cores,
    load_probe,
    machine_key,
    probe,
    save_probe,
    speed_figures,
    speed_rounds,
)
from wiredprof.remote.spec import HostSpec


def test_host_facts_and_loop_here() -> None:
    facts = host_facts()
    assert facts["cores"] >= 1 and facts["memory_bytes"] > 0 and facts["cpu_model"]
    assert cpu_loop_seconds(10_000, 1) > 0
    times = cpu_loop_times(10_000, 2)
    assert len(times) == 2 and all(w > 0 and c > 0 for w, c in times)


@pytest.mark.ssh
@pytest.mark.timeout(60)
def test_probe_saves_and_loads(spec: HostSpec, tmp_path: Path) -> None:
    with connect(spec) as b:
        result = probe(b, rtt_samples=5, bandwidth_bytes=1 << 20, rounds=1)
    assert result.schema == SCHEMA and result.host == "B"
    for name in ("cpu_speed_ratio", "cpu_time_ratio", "local_loop_cpu_s", "remote_loop_cpu_s", "rtt_s", "loop_iteration_s",
                 "bandwidth_bytes_per_s", "memory_bytes", "cores"):
        assert getattr(result, name) > 0
    assert result.python.startswith("3.")
    # The loopback sshd is this very machine; the speed loop was repeated, at least 3 rounds.
    assert result.same_machine is True
    assert result.speed_rounds >= 3 and result.ratio_spread >= 0 and 0 <= result.busy_cores <= result.cores + 0.5
    path = save_probe(result, tmp_path)
    assert path == tmp_path / "B.json"
    assert load_probe(tmp_path, "B") == result
    assert load_probe(tmp_path, "nope") is None
    path.write_text('{"schema": "other/9"}')
    with pytest.raises(ConfigError, match="wiredprof hosts check B"):
        load_probe(tmp_path, "B")


def test_from_dict_rejects_missing_fields() -> None:
    with pytest.raises(ValueError, match="missing"):
        ProbeResult.from_dict({"schema": SCHEMA, "host": "B"})


def test_a_probe_saved_before_the_cpu_time_ratio_still_loads(tmp_path: Path) -> None:
    old = {"schema": SCHEMA, "host": "B", "address": "b", "probed_at": "t", "python": "3.11.7",
           "python_executable": "python3", "cloudpickle": None, "cloudpickle_shipped": True, "cores": 2,
           "cpu_model": "x", "memory_bytes": 1, "cpu_speed_ratio": 4.0, "local_loop_s": 0.4,
           "remote_loop_s": 0.1, "rtt_s": 0.001, "rtt_p95_s": 0.002, "bandwidth_bytes_per_s": 1e8,
           "connect_s": 0.2, "platform": "Linux"}
    loaded = ProbeResult.from_dict(old)
    assert loaded.cpu_time_ratio == 0.0 and loaded.cpu_speed_ratio == 4.0


def test_machine_key_and_busy_cores_here() -> None:
    key = machine_key()
    assert len(key) == 64 and key == machine_key()
    assert open("/etc/machine-id").read().strip() not in key  # a digest, not the id itself
    busy = busy_cores(0.05)
    assert 0.0 <= busy <= (host_facts()["cores"] or 1) * 4 + 0.5


@pytest.mark.ssh
@pytest.mark.timeout(60)
def test_speed_rounds_are_bounded_and_say_noisy(spec: HostSpec) -> None:
    with connect(spec) as b:
        never = speed_rounds(b, 20_000, min_rounds=2, max_rounds=3, target_spread=-1.0)
        easy = speed_rounds(b, 20_000, min_rounds=3, max_rounds=10, target_spread=10.0, min_s=0.0)
        t0 = time.monotonic()
        long = speed_rounds(b, 20_000, min_rounds=3, max_rounds=200, target_spread=10.0, min_s=0.5)
        took = time.monotonic() - t0
    assert len(never.remote) == len(never.local) == 3 and never.noisy
    assert len(easy.remote) == 3 and not easy.noisy
    assert took >= 0.5 and len(long.ratios) > 3
    low, high = long.extremes()
    assert 0 < low <= sorted(long.ratios)[len(long.ratios) // 2] <= high


def test_the_ratios_are_of_totals_so_rounds_that_paid_a_throttling_count() -> None:
    """Four rounds at 1.0 and one that straddled a quota's throttling at 2.0: the mean's 1.2, not the median's 1.0."""
    local = [(4.0, 1.0)] * 4 + [(8.0, 2.0)]
    remote = [(1.0, 1.0)] * 5
    figures = speed_figures(SpeedRounds(remote, local, 0.0, False, [c / w for (_, c), (w, _) in zip(local, remote)]))
    assert figures["cpu_time_ratio"] == 1.2 and figures["cpu_speed_ratio"] == 4.8
    assert figures["local_loop_cpu_s"] == 1.2 and figures["ratio_low"] == 1.0 and figures["ratio_high"] == 2.0
    assert figures["loop_iteration_s"] == 0.0  # the loop's length unknown
    ratios = [c / w for (_, c), (w, _) in zip(local, remote)]
    assert speed_figures(SpeedRounds(remote, local, 0.0, False, ratios, 1_000_000))["loop_iteration_s"] == 1e-6
    # The host's time per iteration is its median round: one burst there does not move it.
    bursty = [(1.0, 1.0)] * 4 + [(3.0, 1.0)]
    assert speed_figures(SpeedRounds(bursty, local, 0.0, False, ratios, 1_000_000))["loop_iteration_s"] == 1e-6


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="a CPU quota needs root (cgroups)")
@pytest.mark.timeout(120)
def test_inside_a_cpu_quota_a_round_is_sized_by_cpu_and_meets_the_throttling() -> None:
    """Sized by wall time, a round in a 25 % quota was ~12 ms of CPU: inside one quota slice, never throttled."""
    from benchmarks.simhosts import HostA

    code = ("import json; from wiredprof.remote.probe import _calibrated_n, cpu_loop_times\n"
            "n = _calibrated_n(); print(json.dumps(cpu_loop_times(n, 3)))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with HostA(quota_us=25_000) as a:
        before = a.cpu_stats()["nr_throttled"]
        proc = a.run([sys.executable, "-c", code], timeout=100, capture_output=True, text=True, env=env)
        throttled = a.cpu_stats()["nr_throttled"] - before
    assert proc.returncode == 0, proc.stderr
    rounds = json.loads(proc.stdout)
    # Each round is about ROUND_CPU_S of CPU (a busy machine only adds), so it spans quota periods:
    # its wall is several times its CPU, and the cgroup was throttled during the rounds.
    assert all(cpu >= 0.5 * ROUND_CPU_S for _, cpu in rounds), rounds
    assert sum(w for w, _ in rounds) >= 2.0 * sum(c for _, c in rounds), rounds
    assert throttled >= 3
