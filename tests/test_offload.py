"""Offloaded stages on a real OpenSSH sshd (loopback), in real wiredflow and plain flows."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from wiredprof.config import OffloadEntry
from wiredprof.offload import OffloadRuntime
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.localsshd import LocalSshd
from wiredprof.remote.spec import HostSpec
from wiredprof.runner import RunOptions, run_flow

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(180)]


def _runtime(sshd: LocalSshd, tmp_path: Path, **entry) -> OffloadRuntime:
    spec = HostSpec.direct(
        sshd.address, port=sshd.port, user=sshd.user, identity=sshd.identity,
        known_hosts=sshd.known_hosts, name="B", allow_agent=False,
    ).with_(ssh_dir=tmp_path, system_known_hosts=())
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


def test_a_failure_on_b_is_seen_by_the_flow_with_its_original_type(flows, sshd, tmp_path):
    profile = run_flow(flows / "wiredflow_small.py", ["--fail"],
                       RunOptions(duration_s=5, call_trees=False, offloads=_runtime(sshd, tmp_path)))
    assert profile.status == "failed"
    core = profile.stage("pipeline_3.core_logic")
    assert core.errors >= 1 and core.last_error.type == "RuntimeError"
    assert "core logic failed on purpose" in core.last_error.message
    assert core.retries == 0 and core.fallbacks == 0  # the stage's own error is not retried


def test_unreachable_host_falls_back_to_local_and_is_counted(flows, tmp_path):
    dead = HostSpec.direct("127.0.0.1", port=1, name="B", allow_agent=False).with_(
        ssh_dir=tmp_path, system_known_hosts=(), connect_timeout_s=2.0)
    entry = OffloadEntry("pipeline_3.core_logic", "B", on_failure="local", retries=1)
    runtime = OffloadRuntime({entry.stage: entry}, connect=lambda host: RemoteExecutor(dead).connect())
    profile = run_flow(flows / "wiredflow_small.py", [], RunOptions(runs=1, call_trees=False, offloads=runtime))
    core = profile.stage("pipeline_3.core_logic")
    assert profile.status == "ok"
    assert core.calls == 1 and core.retries == 1 and core.fallbacks == 1


def test_plain_decorated_stage_runs_on_b(flows, sshd, tmp_path):
    profile = run_flow(flows / "plain_small.py", [], RunOptions(runs=2, call_trees=False,
                                                                offloads=_runtime(sshd, tmp_path)))
    core = profile.stage("pipeline_3.core_logic")
    assert core.host == "B" and core.calls == 2 and core.errors == 0
