"""Offloaded stages on a real OpenSSH sshd (loopback), in real wiredflow and plain flows."""
from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import pytest

from wiredprof.offload.entries import OffloadEntry
from wiredprof.errors import WorkerLostError
from wiredprof.offload.runtime import OffloadRuntime
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.testing.localsshd import LocalSshd
from wiredprof.remote.spec import HostSpec
from wiredprof.runner import RunOptions, run_flow

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(180)]


def _spec(sshd: LocalSshd, tmp_path: Path) -> HostSpec:
    return HostSpec.direct(
        sshd.address, port=sshd.port, user=sshd.user, identity=sshd.identity,
        known_hosts=sshd.known_hosts, name="B", allow_agent=False,
    ).with_(ssh_dir=tmp_path, system_known_hosts=())


def _runtime(sshd: LocalSshd, tmp_path: Path, **entry) -> OffloadRuntime:
    spec = _spec(sshd, tmp_path)
    stage = entry.pop("stage", "pipeline_3.core_logic")
    entries = {stage: OffloadEntry(stage=stage, host="B", **entry)}
    return OffloadRuntime(entries, connect=lambda host: RemoteExecutor(spec).connect())


def _outputs(path: Path) -> list[dict]:
    return [ast.literal_eval(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_core_logic_runs_on_b_and_the_flow_sees_the_same_outputs(flows, sshd, tmp_path, monkeypatch, mode):
    args = ["--processes"] if mode == "processes" else []
    local_out, remote_out = tmp_path / "local.txt", tmp_path / "remote.txt"
    monkeypatch.setenv("WIREDFLOW_SMALL_OUT", str(local_out))
    local = run_flow(flows / "wiredflow_small.py", args, RunOptions(runs=2, call_trees=False))
    monkeypatch.setenv("WIREDFLOW_SMALL_OUT", str(remote_out))
    remote = run_flow(flows / "wiredflow_small.py", args,
                      RunOptions(runs=2, call_trees=False, offloads=_runtime(sshd, tmp_path)))

    assert local.stage("pipeline_3.core_logic").host == "local"
    core = remote.stage("pipeline_3.core_logic")
    assert core.host == "B" and core.calls == 2 and core.errors == 0
    # Every other stage stayed here.
    assert {s.host for s in remote.stages if s.name != "pipeline_3.core_logic"} == {"local"}
    a, b = _outputs(local_out), _outputs(remote_out)
    assert [o["checksum"] for o in a] == [o["checksum"] for o in b]
    # db_connectors reached the core logic on B (through the proxy), with the same pipelines.
    assert [o["pipelines"] for o in a] == [o["pipelines"] for o in b] == [["pipeline_1", "pipeline_3"]] * 4
    # It really ran in another process: B's worker.
    assert {o["pid"] for o in b}.isdisjoint({os.getpid(), *(o["pid"] for o in a)})
    assert any(t.host == "B" for t in remote.timeline)


@pytest.mark.parametrize("flag, error_type", [("--fail", "RuntimeError"),
                                              ("--fail-missing-file", "FileNotFoundError")])
def test_the_stages_own_error_surfaces_at_once_never_retried_never_run_locally(
        flows, sshd, tmp_path, monkeypatch, flag, error_type):
    # The most lenient policy there is: a link failure here would be retried twice, then run locally.
    # An OSError of the stage's own code is its result, not a link failure.
    runs = tmp_path / "runs.txt"
    monkeypatch.setenv("WIREDFLOW_SMALL_RUNS", str(runs))
    profile = run_flow(flows / "wiredflow_small.py", [flag],
                       RunOptions(duration_s=5, call_trees=False,
                                  offloads=_runtime(sshd, tmp_path, on_failure="local", retries=2)))
    assert profile.status == "failed"
    core = profile.stage("pipeline_3.core_logic")
    assert core.errors >= 1 and core.last_error.type == error_type
    assert core.host == "B"
    assert core.retries == core.fallbacks == core.link_losses == core.timeouts == 0
    executions = runs.read_text().split()
    # Exactly one execution per failed call, all on B: none here, none repeated.
    assert len(executions) == core.calls  # (calls count failed calls too)
    assert str(os.getpid()) not in executions


def test_unreachable_host_falls_back_to_local_and_is_counted(flows, tmp_path):
    dead = HostSpec.direct("127.0.0.1", port=1, name="B", allow_agent=False).with_(
        ssh_dir=tmp_path, system_known_hosts=(), connect_timeout_s=2.0)
    entry = OffloadEntry("pipeline_3.core_logic", "B", on_failure="local", retries=1)
    runtime = OffloadRuntime({entry.stage: entry}, connect=lambda host: RemoteExecutor(dead).connect())
    profile = run_flow(flows / "wiredflow_small.py", [], RunOptions(runs=1, call_trees=False, offloads=runtime))
    core = profile.stage("pipeline_3.core_logic")
    assert profile.status == "ok"
    assert core.calls == 1 and core.retries == 1 and core.fallbacks == 1 and core.link_losses == 2
    assert sorted(e.what for e in profile.offload_events) == ["fallbacks", "link_losses", "link_losses", "retries"]


def test_plain_decorated_stage_runs_on_b(flows, sshd, tmp_path):
    profile = run_flow(flows / "plain_small.py", [], RunOptions(runs=2, call_trees=False,
                                                                offloads=_runtime(sshd, tmp_path)))
    core = profile.stage("pipeline_3.core_logic")
    assert core.host == "B" and core.calls == 2 and core.errors == 0


def _die_first_time(marker: str, runs: str) -> str:
    """On B: log the execution; the first one kills its worker (SIGKILL) after it started."""
    with open(runs, "a") as f:
        f.write(f"{os.getpid()}\n")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return "done"


def _policy_runtime(sshd: LocalSshd, tmp_path: Path, **entry) -> OffloadRuntime:
    spec = _spec(sshd, tmp_path)
    stage = "p.s"
    entries = {stage: OffloadEntry(stage=stage, host="B", **entry)}
    return OffloadRuntime(entries, connect=lambda host: RemoteExecutor(spec))


def _stand_in(runtime: OffloadRuntime):
    entry = runtime.entries["p.s"]
    return runtime._remote(entry, _die_first_time)


def test_a_call_lost_after_it_started_is_not_run_again_by_default(sshd, tmp_path):
    runtime = _policy_runtime(sshd, tmp_path, on_failure="local", retries=2)
    runs = tmp_path / "runs.txt"
    try:
        with pytest.raises(WorkerLostError, match="it had started there") as info:
            _stand_in(runtime)(str(tmp_path / "marker"), str(runs))
    finally:
        runtime.close()
    assert info.value.started is True
    assert len(runs.read_text().split()) == 1  # at most once: not retried, not run here
    c = runtime.counters["p.s"]
    assert (c.link_losses, c.retries, c.retries_after_start, c.fallbacks) == (1, 0, 0, 0)


def test_an_idempotent_call_lost_after_it_started_is_retried(sshd, tmp_path):
    runtime = _policy_runtime(sshd, tmp_path, on_failure="fail", retries=1, idempotent=True)
    runs = tmp_path / "runs.txt"
    try:
        assert _stand_in(runtime)(str(tmp_path / "marker"), str(runs)) == "done"
    finally:
        runtime.close()
    assert len(runs.read_text().split()) == 2
    c = runtime.counters["p.s"]
    assert (c.link_losses, c.retries, c.retries_after_start, c.fallbacks) == (1, 0, 1, 0)


def test_an_idempotent_call_falls_back_to_local_after_a_start(sshd, tmp_path):
    runtime = _policy_runtime(sshd, tmp_path, on_failure="local", retries=0, idempotent=True)
    runs = tmp_path / "runs.txt"
    (tmp_path / "marker").unlink(missing_ok=True)
    try:
        # Locally the marker exists by then (B and A share this disk): the fallback returns.
        assert _stand_in(runtime)(str(tmp_path / "marker"), str(runs)) == "done"
    finally:
        runtime.close()
    pids = runs.read_text().split()
    assert len(pids) == 2 and pids[1] == str(os.getpid())
    c = runtime.counters["p.s"]
    assert (c.link_losses, c.retries_after_start, c.fallbacks) == (1, 0, 1)


def test_a_host_that_is_down_goes_straight_to_the_policy_once_the_breaker_opens(tmp_path):
    dead = HostSpec.direct("127.0.0.1", port=1, name="B", allow_agent=False).with_(
        ssh_dir=tmp_path, system_known_hosts=(), connect_timeout_s=2.0)
    entry = OffloadEntry("p.s", "B", on_failure="local", retries=1)
    executor = RemoteExecutor(dead)
    executor.breaker.base_s = 0.01  # keep the test short; the cool-down stays long
    runtime = OffloadRuntime({entry.stage: entry}, connect=lambda host: executor)
    stand_in = runtime._remote(entry, lambda x: x * 2)
    try:
        assert [stand_in(i) for i in range(10)] == [i * 2 for i in range(10)]
    finally:
        runtime.close()
    c = runtime.counters["p.s"]
    assert c.fallbacks == 10
    # Connect attempts stop at the breaker's threshold; the rest skip the host without trying.
    assert executor.breaker.failures == executor.breaker.threshold
    assert executor.breaker.is_open
    assert c.retries == 2  # the first call retried once; a call that hits the open breaker does not retry


def _raises_a_wiredprof_error(runs: str) -> None:
    with open(runs, "a") as f:
        f.write(f"{os.getpid()}\n")
    raise WorkerLostError("raised by the stage itself")


def test_a_stage_raising_a_wiredprof_link_error_itself_is_still_the_stages_own_error(sshd, tmp_path):
    runtime = _policy_runtime(sshd, tmp_path, on_failure="local", retries=2, idempotent=True)
    runs = tmp_path / "runs.txt"
    stand_in = runtime._remote(runtime.entries["p.s"], _raises_a_wiredprof_error)
    try:
        with pytest.raises(WorkerLostError, match="raised by the stage itself") as info:
            stand_in(str(runs))
    finally:
        runtime.close()
    assert getattr(info.value, "wiredprof_origin") == "stage"
    assert "_raises_a_wiredprof_error" in info.value.remote_traceback  # type: ignore[attr-defined]
    assert len(runs.read_text().split()) == 1
    c = runtime.counters["p.s"]
    assert (c.link_losses, c.retries, c.retries_after_start, c.fallbacks) == (0, 0, 0, 0)


def test_a_run_never_waits_on_b_far_past_its_duration(flows, sshd, tmp_path):
    runtime = _runtime(sshd, tmp_path, on_failure="fail")  # no per-call timeout at all
    started = time.monotonic()
    profile = run_flow(flows / "plain_stuck_remote.py", [],
                       RunOptions(duration_s=1, call_trees=False, offloads=runtime))
    took = time.monotonic() - started
    core = profile.stage("pipeline_3.core_logic")
    assert core.host == "B" and core.timeouts == 1 and core.errors == 1
    # The call asked for 300 s; the run ends at --duration plus the offload grace (10 s).
    assert took < 1 + 10 + 15
