"""The second half of the main job through the CLI, on real wiredflow and a real sshd:
analyze -> hosts add/check -> plan -> offload -> run -> analyze -> compare, and every bad input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.commands.clitools import one_line_error, wp
from wiredprof.testing.localsshd import LocalSshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def host_b(unprobed_b: str) -> str:
    r = wp("hosts", "check", "B")
    assert r.exit_code == 0, r.stderr
    return "B"


def test_the_whole_story(flows: Path, host_b: str, project_dir: Path, monkeypatch: pytest.MonkeyPatch):
    flow = flows / "wiredflow_small.py"
    out_before, out_after = project_dir / "before.txt", project_dir / "after.txt"

    monkeypatch.setenv("WIREDFLOW_SMALL_OUT", str(out_before))
    r = wp("analyze", flow, "--runs", "3", "-q", "-o", "before.json")
    assert r.exit_code == 0, r.stderr
    # Its pipelines run every second and finish a cycle in about a third of that: no pipeline is
    # busy half the time, so the verdict is the schedule (issue 9), naming the heaviest stage it
    # saw; on a loaded machine the cycle can pass half the period, and core_logic is the bottleneck.
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("Bottleneck: "))
    assert (line.startswith("Bottleneck: none: the flow is limited by its schedule")
            and "its heaviest stage pipeline_3.core_logic" in r.stdout) \
        or line.startswith("Bottleneck: pipeline_3.core_logic"), line

    r = wp("plan", "--json")  # the last profile, all hosts
    assert r.exit_code == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["schema"] == "wiredprof.plan/1"
    core = next(x for x in plan["recommendations"] if x["stage"] == "pipeline_3.core_logic")
    assert core["host"] == "B" and core["predicted_s"] > 0
    waits = [x for x in plan["recommendations"] if x["stage"] == "pipeline_1.storage"]
    # Not recommended, and why: it sleeps (wait-bound); on a loaded machine its wake-ups wait for the
    # GIL long enough to make it GIL-bound, and then the idle verdict's reason is the one that holds.
    assert waits and not waits[0]["recommended"]
    assert ("a faster CPU will not help" in waits[0]["reason"]
            or "the flow is limited by its schedule, not by a stage" in waits[0]["reason"]), waits[0]["reason"]
    text = wp("plan", "before.json").stdout
    assert "pipeline_3.core_logic -> B:" in text and "pipeline_1.storage -> B: not recommended" in text

    r = wp("offload", "--stage", "core_logic", "--host", "B", flow)
    assert r.exit_code == 0, r.stderr
    assert "pipeline_3.core_logic will run on B" in r.stdout and "predicted:" in r.stdout
    assert 'offload."pipeline_3.core_logic"' in (project_dir / "wiredprof.toml").read_text()
    listing = wp("offload", "--list")
    assert "pipeline_3.core_logic" in listing.stdout and "B" in listing.stdout

    monkeypatch.setenv("WIREDFLOW_SMALL_OUT", str(out_after))
    r = wp("run", flow, "--runs", "3")
    assert r.exit_code == 0, r.stderr
    assert "pipeline_3.core_logic ran on B: 3 calls" in r.stderr

    r = wp("analyze", flow, "--runs", "3", "-q", "-o", "after.json")
    assert r.exit_code == 0, r.stderr
    after = json.loads((project_dir / "after.json").read_text())
    hosts = {s["pipeline"] + "." + s["stage"]: s["host"] for s in after["stages"]}
    assert hosts.pop("pipeline_3.core_logic") == "B" and set(hosts.values()) == {"local"}
    # Same stage outputs as the local run (the send stage records what core logic returned).
    before_sums = {eval(line)["checksum"] for line in out_before.read_text().splitlines()}
    after_sums = {eval(line)["checksum"] for line in out_after.read_text().splitlines()}
    assert before_sums == after_sums and len(after_sums) == 1

    r = wp("compare", "before.json", "after.json")
    assert r.exit_code == 0 and "local -> B" in r.stdout

    r = wp("offload", "--remove", "core_logic")
    assert r.exit_code == 0 and "runs locally again" in r.stdout
    assert "no stage is offloaded" in wp("offload", "--list").stdout


def test_bad_input(flows: Path, host_b: str, project_dir: Path, sshd: LocalSshd):
    flow = flows / "wiredflow_small.py"
    one_line_error(wp("offload", "--stage", "core_logc", "--host", "B", flow), "did you mean 'core_logic'")
    one_line_error(wp("offload", "--stage", "storage", "--host", "B", flow),
                   "pipeline_1.storage, pipeline_3.storage")
    one_line_error(wp("offload", "--stage", "core_logic", "--host", "C", flow), "unknown host 'C'", "known: B")
    one_line_error(wp("plan", "--host", "C"), "no profile yet")

    assert wp("hosts", "add", "DEAD", "--address", "root@127.0.0.1:1").exit_code == 0
    one_line_error(wp("offload", "--stage", "core_logic", "--host", "DEAD", flow), "DEAD")

    empty = project_dir / "empty_known_hosts"
    empty.write_text("")
    assert wp("hosts", "add", "STRANGER", "--address", f"{sshd.user}@{sshd.address}:{sshd.port}",
              "--identity", sshd.identity, "--known-hosts", empty).exit_code == 0
    one_line_error(wp("offload", "--stage", "core_logic", "--host", "STRANGER", flow), "SHA256:")

    liar = project_dir / "python3.8"
    liar.write_text(f"#!{sys.executable}\nimport sys\nsys.version_info = (3, 8, 10, 'final', 0)\n"
                    "exec(compile(sys.argv[2], '<string>', 'exec'))\n")
    liar.chmod(0o755)
    assert wp("hosts", "add", "OLD", "--address", f"{sshd.user}@{sshd.address}:{sshd.port}",
              "--identity", sshd.identity, "--known-hosts", sshd.known_hosts, "--python", liar).exit_code == 0
    one_line_error(wp("offload", "--stage", "core_logic", "--host", "OLD", flow), "Python 3.8.10")

    one_line_error(wp("offload", "--stage", "core_logic", "--host", "B", flows / "unshippable.py"),
                   "cannot be offloaded", "ticks")

    builtin = project_dir / "builtin.py"
    builtin.write_text(
        "from wiredflow.main.build import FlowBuilder\n"
        "b = FlowBuilder()\n"
        "b.add_pipeline('p', timedelta_seconds=1).with_http_connector('get', source='http://127.0.0.1:9/x')"
        ".with_storage(lambda data, **kw: None)\n"
        "b.build().launch_flow(execution_seconds=1)\n")
    one_line_error(wp("offload", "--stage", "http_connector", "--host", "B", builtin),
                   "built-in StageGetHTTPConnector", "only stages built from your own callables")

    assert wp("offload", "--stage", "core_logic", "--host", "B", flow).exit_code == 0
    one_line_error(wp("offload", "--stage", "core_logic", "--host", "B", flow), "already offloaded to B")

    with open(project_dir / "wiredprof.toml", "a") as f:
        f.write('\n[offload."pipeline_3.vanished"]\nhost = "B"\n')
    one_line_error(wp("run", flow, "--runs", "1"), "pipeline_3.vanished", "no longer has")
    one_line_error(wp("offload", "--remove", "pipeline_9.nothing"), "no stage 'pipeline_9.nothing'")
