"""samples/_workload.py: deterministic, input-dependent, calibrated, and shippable by value."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import samples._io_stages
import samples._workload
from samples._io_stages import JsonLinesStore
from samples._workload import calibrate_blocks, checksum_work, stable_seed


def test_checksum_is_deterministic_and_depends_on_seed_and_work() -> None:
    assert checksum_work(7, 3) == checksum_work(7, 3)
    assert checksum_work(7, 3) != checksum_work(8, 3)
    assert checksum_work(7, 3) != checksum_work(7, 4)
    assert 0 <= checksum_work(123456789, 2) < 2**48


def test_stable_seed_depends_on_content_only() -> None:
    assert stable_seed({"a": 1, "b": [1, 2]}) == stable_seed({"b": [1, 2], "a": 1})
    assert stable_seed({"a": 1}) != stable_seed({"a": 2})
    assert stable_seed(None) == stable_seed(None)


def test_calibration_sizes_the_work_to_the_requested_cpu() -> None:
    small, large = calibrate_blocks(0.1), calibrate_blocks(0.4)
    assert small.blocks >= 1 and small.predicted_seconds == pytest.approx(0.1, rel=0.05)
    # Four times the CPU means about four times the blocks (rates vary a little between probes).
    assert 2.5 < large.blocks / small.blocks < 6
    start = time.thread_time()
    checksum_work(1, large.blocks)
    spent = time.thread_time() - start
    # Relative, not absolute: the calibrated work takes about what was predicted on this machine.
    assert 0.4 < spent / large.predicted_seconds < 2.5


def _run_remotely(payload: bytes, tmp_path: Path) -> str:
    """Unpickle and call in a fresh interpreter where `samples` is not importable."""
    (tmp_path / "payload.pkl").write_bytes(payload)
    code = (
        "import cloudpickle\n"
        "try:\n    import samples\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('samples is importable here: this would not test shipping by value')\n"
        "fn, args, kwargs = cloudpickle.loads(open('payload.pkl', 'rb').read())\n"
        "print(repr(fn(*args, **kwargs)))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_reference_core_logic_ships_by_value(tmp_path: Path) -> None:
    import samples.reference_flow as reference

    store = JsonLinesStore(tmp_path / "absent.jsonl", 0.0)  # stands in for a storage stage
    kwargs: dict[str, Any] = {"relevant_info": {"batch": 3}, "db_connectors": {"pipeline_1": store},
                              "pipeline_name": "pipeline_3", "blocks": 5}
    for module in (samples._workload, samples._io_stages, reference):
        cloudpickle.register_pickle_by_value(module)
    try:
        payload = cloudpickle.dumps((reference.core_logic, (), kwargs))
    finally:
        for module in (samples._workload, samples._io_stages, reference):
            cloudpickle.unregister_pickle_by_value(module)
    local = reference.core_logic(**kwargs)
    assert _run_remotely(payload, tmp_path) == repr(local)
    assert local["checksum"] == checksum_work(stable_seed({"batch": 3}), 5)


def test_workload_module_ships_by_value(tmp_path: Path) -> None:
    cloudpickle.register_pickle_by_value(samples._workload)
    try:
        payload = cloudpickle.dumps((checksum_work, (stable_seed([1, 2, 3]), 4), {}))
    finally:
        cloudpickle.unregister_pickle_by_value(samples._workload)
    assert _run_remotely(payload, tmp_path) == repr(checksum_work(stable_seed([1, 2, 3]), 4))
