"""Probe results: the planner's contract (schema, fields), and a real probe over sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiredprof.errors import ConfigError
from wiredprof.remote import connect
from wiredprof.remote.probe import (
    SCHEMA,
    ProbeResult,
    cpu_loop_seconds,
    host_facts,
    load_probe,
    probe,
    save_probe,
)
from wiredprof.remote.spec import HostSpec


def test_host_facts_and_loop_here() -> None:
    facts = host_facts()
    assert facts["cores"] >= 1 and facts["memory_bytes"] > 0 and facts["cpu_model"]
    assert cpu_loop_seconds(10_000, 1) > 0


@pytest.mark.ssh
@pytest.mark.timeout(60)
def test_probe_saves_and_loads(spec: HostSpec, tmp_path: Path) -> None:
    with connect(spec) as b:
        result = probe(b, rtt_samples=5, bandwidth_bytes=1 << 20, rounds=1)
    assert result.schema == SCHEMA and result.host == "B"
    for name in ("cpu_speed_ratio", "rtt_s", "bandwidth_bytes_per_s", "memory_bytes", "cores"):
        assert getattr(result, name) > 0
    assert result.python.startswith("3.")
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
