"""An offloaded stage runs on host B from a process the flow spawned (not forked) as from a forked one."""
from __future__ import annotations

import pytest

from tests.proctree._procs import REPO
from wiredprof.offload.entries import OffloadEntry
from wiredprof.offload.runtime import OffloadRuntime
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.spec import HostSpec
from wiredprof.runner import RunOptions, run_flow

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(180)]


class SpecConnector:
    """Connects to the test's sshd; module-level, so a spawned process can unpickle it."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec

    def __call__(self, host: str) -> RemoteExecutor:
        return RemoteExecutor(self.spec).connect()


def _runtime(sshd, tmp_path, stage: str) -> OffloadRuntime:
    spec = HostSpec.direct(
        sshd.address, port=sshd.port, user=sshd.user, identity=sshd.identity,
        known_hosts=sshd.known_hosts, name="B", allow_agent=False,
    ).with_(ssh_dir=tmp_path, system_known_hosts=())
    return OffloadRuntime({stage: OffloadEntry(stage=stage, host="B")}, connect=SpecConnector(spec))


@pytest.mark.parametrize("flow_args", [[], ["--spawn"]], ids=["fork", "spawn"])
def test_an_offloaded_stage_runs_on_b_from_a_pool_worker(sshd, tmp_path, monkeypatch, flow_args):
    out = tmp_path / "pids.txt"
    monkeypatch.setenv("FUTURES_FLOW_OUT", str(out))
    # A spawned process unpickles SpecConnector by reference: it must find this module.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    runtime = _runtime(sshd, tmp_path, "polling.http_connector")
    profile = run_flow(REPO / "tests" / "flows" / "futures_flow.py", flow_args,
                       RunOptions(runs=2, call_trees=False, offloads=runtime))
    stage = profile.stage("polling.http_connector")
    assert stage.calls == 2 and stage.errors == 0 and stage.fallbacks == 0
    worker = profile.flows[0].pid  # the pool worker that ran the flow
    pids = {int(line) for line in out.read_text().split()}
    assert len(pids) == 1 and worker not in pids, "the connector ran in B's worker, not in the pool worker"
