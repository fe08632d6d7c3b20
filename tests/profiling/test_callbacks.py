"""Call-backs to host A counted per stage call, on real wiredflow (threads and processes modes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from wiredprof.profiling import callbacks
from wiredprof.runner import RunOptions, run_flow

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "callback_flow.py"

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("mode", [[], ["--processes"]], ids=["threads", "processes"])
def test_core_logic_loads_counted_and_framework_saves_not(mode: list[str], tmp_path: Path) -> None:
    profile = run_flow(SAMPLE, ["--records", "2000", "--seconds", "60", "--workdir", str(tmp_path), *mode],
                       RunOptions(runs=3, call_trees=False))
    core = profile.stage("report.core_logic")
    assert core.calls >= 2
    # Two storages loaded per call, through db_connectors.
    assert core.callbacks == 2 * core.calls
    assert 0 < core.callback_s <= core.total_s
    assert 0 < core.callback_cpu_s <= core.cpu_s
    # About 2 x 2000 records a call cross (each ~70 bytes pickled), and pickling them takes time.
    per_call = core.callback_bytes / core.calls
    assert 2 * 2000 * 30 < per_call < 2 * 2000 * 300
    assert core.callback_pickle_s > 0 and core.callback_unpickle_s > 0
    # wiredflow calling its storages' save as stages of their own: no call-back.
    for name in ("weather.storage", "prices.storage", "weather.http_connector", "report.send"):
        assert profile.stage(name).callbacks == 0, name


def test_patches_are_removed_after_the_run(tmp_path: Path) -> None:
    from wiredflow.main.actions.assimilation.store_staging import JSONStorageStage

    run_flow(SAMPLE, ["--records", "50", "--seconds", "30", "--workdir", str(tmp_path)],
             RunOptions(runs=1, call_trees=False))
    assert not getattr(JSONStorageStage.load, "wiredprof_callback", False)
    assert not getattr(JSONStorageStage.save, "wiredprof_callback", False)


def test_an_offloaded_stage_in_flight_owns_the_proxy_threads_call_backs() -> None:
    with callbacks.offloaded_call("p.s"):
        with callbacks.offloaded_call("p.s"):
            assert callbacks._in_flight == {"p.s": 2}
        assert callbacks._in_flight == {"p.s": 1}
    assert callbacks._in_flight == {}


def test_the_mqtt_actions_save_into_its_own_storage_is_the_chain_not_a_call_back() -> None:
    """wiredflow's MQTT action saves each message from inside the MQTT connector: counting it as a
    call-back once measured its bytes on the flow's thread and stalled the pipeline for seconds."""
    idle = SAMPLE.parent / "idle_flow.py"
    profile = run_flow(idle, ["--period", "1", "--seconds", "3", "--publish-every", "0.2"],
                       RunOptions(runs=None, duration_s=3, call_trees=False))
    connector = profile.stage("sensors.mqtt_connector")
    assert connector.calls >= 3 and profile.stage("sensors.storage").calls >= 3
    assert connector.callbacks == 0 and connector.callback_bytes == 0


def test_by_value_modules_are_decided_before_the_flow_runs() -> None:
    """The scan of sys.modules (a path per module) runs when wiredflow is imported, not at the first
    measured call-back on a flow's thread."""
    import sys

    from wiredprof.remote import serialize

    callbacks._patch_classes()
    try:
        assert serialize._scanned_count == len(sys.modules)
    finally:
        callbacks.uninstall()
