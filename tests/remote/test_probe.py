"""Probe results: the planner's contract (schema, fields), and a real probe over sshd."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wiredprof.errors import ConfigError
from wiredprof.remote import connect
from wiredprof.remote.probe import (
    SCHEMA,
    ProbeResult,
    cpu_loop_seconds,
    cpu_loop_times,
    host_facts,
    busy_cores,
    load_probe,
    machine_key,
    probe,
    save_probe,
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
    for name in ("cpu_speed_ratio", "cpu_time_ratio", "local_loop_cpu_s", "remote_loop_cpu_s", "rtt_s",
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
