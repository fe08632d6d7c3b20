"""The runner on real flows: plain Python and real wiredflow (threads and processes)."""
from __future__ import annotations

import re
import sys

import pytest

from wiredprof.errors import FlowFileError, NoStagesError, UsageError
from wiredprof.runner import RunOptions, run_flow


def _names(profile):
    return {s.name for s in profile.stages}


@pytest.mark.slow
def test_plain_flow_runs_as_main_with_its_argv(flows, capsys):
    saved_argv = list(sys.argv)
    # Two cycles of each pipeline, whatever the machine's load (the deadline also counts wiredprof's own
    # start: 1.5 s of it once passed before the flow's threads began, and no stage was seen); bounded.
    profile = run_flow(flows / "plain_small.py", ["--flag", "x"], RunOptions(runs=2, duration_s=60))
    assert "argv: ['--flag', 'x']" in capsys.readouterr().out
    assert sys.argv == saved_argv
    assert _names(profile) == {
        "pipeline_1.http_connector", "pipeline_1.storage", "pipeline_3.core_logic", "pipeline_3.send",
    }
    core = profile.stage("pipeline_3.core_logic")
    assert core.calls > 0 and core.cpu_s > 0
    assert profile.status == "ok"
    assert profile.bottleneck is not None


@pytest.mark.slow
def test_runs_bounds_each_pipeline(flows):
    profile = run_flow(flows / "plain_small.py", [], RunOptions(runs=3))
    assert {p.name: p.runs for p in profile.pipelines} == {"pipeline_1": 3, "pipeline_3": 3}
    core = profile.stage("pipeline_3.core_logic")
    # The 2nd call ran under pyinstrument: counted apart, kept out of the timings.
    assert core.calls + core.sampled_calls == 3
    assert core.sampled_calls == 1
    tree = profile.call_tree("pipeline_3.core_logic")
    assert tree is not None and tree.sampled_calls == [2]
    assert "spin" in tree.text


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_wiredflow_flow_is_stopped_and_profiled(flows, mode):
    args = ["--processes"] if mode == "processes" else []
    profile = run_flow(flows / "wiredflow_small.py", args, RunOptions(duration_s=4))
    assert profile.mode == mode
    assert profile.status == "ok"
    assert _names(profile) == {
        "pipeline_1.http_connector", "pipeline_1.storage",
        "pipeline_3.core_logic", "pipeline_3.send", "pipeline_3.storage", "pipeline_3.send_2",
    }
    for s in profile.stages:
        assert s.calls + s.sampled_calls >= 1, s.name
    assert {p.name for p in profile.pipelines} == {"pipeline_1", "pipeline_3"}
    assert all(p.runs >= 1 for p in profile.pipelines)
    # Each pipeline's process measured how long its threads wait to run again (a child reports its own).
    assert all(p.wake_samples > 0 for p in profile.pipelines), profile.pipelines
    core = profile.stage("pipeline_3.core_logic")
    assert core.kind == "core_logic" and core.function == "core_logic"


@pytest.mark.slow
def test_wiredflow_process_mode_bug_is_reported_as_the_success_it_was(flows):
    profile = run_flow(flows / "wiredflow_small.py", ["--processes", "--no-catch"], RunOptions(runs=1))
    assert profile.status == "ok"
    assert any("known wiredflow bug" in n for n in profile.notes)


@pytest.mark.slow
def test_wiredflow_stage_failure_keeps_the_original_traceback(flows):
    profile = run_flow(flows / "wiredflow_small.py", ["--fail"], RunOptions(duration_s=4))
    assert profile.status == "failed"
    core = profile.stage("pipeline_3.core_logic")
    assert core.errors >= 1
    assert core.last_error is not None
    assert core.last_error.type == "RuntimeError"
    assert "core logic failed on purpose" in core.last_error.traceback
    assert "wiredflow_small.py" in core.last_error.traceback
    assert profile.error is not None and profile.error.type == "RuntimeError"


@pytest.mark.slow
def test_wiredflow_twice_in_one_process_is_not_poisoned_by_the_first_failure(flows):
    run_flow(flows / "wiredflow_small.py", ["--fail"], RunOptions(duration_s=3))
    profile = run_flow(flows / "wiredflow_small.py", [], RunOptions(runs=1))
    assert profile.status == "ok"
    assert profile.stage("pipeline_3.core_logic").errors == 0


def test_missing_flow_file(tmp_path):
    with pytest.raises(FlowFileError, match="no such flow file"):
        run_flow(tmp_path / "nope.py")


def test_flow_that_raises_on_import(flows):
    with pytest.raises(FlowFileError) as err:
        run_flow(flows / "raises_on_import.py", [], RunOptions(duration_s=2))
    msg = str(err.value)
    assert "ImportError" in msg and "secret_sauce" in msg and "raises_on_import.py:3" in msg
    assert "\n" not in msg


def test_flow_without_stages(flows):
    with pytest.raises(NoStagesError, match="no pipeline stage was seen"):
        run_flow(flows / "no_stages.py", [], RunOptions(duration_s=2))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_duration(flows, bad):
    with pytest.raises(UsageError, match="--duration"):
        run_flow(flows / "plain_small.py", [], RunOptions(duration_s=bad))


@pytest.mark.slow
def test_gil_competition_is_told_apart_and_its_holder_named(flows):
    profile = run_flow(flows / "gil_contention.py", [], RunOptions(duration_s=3, call_trees=False))
    core = profile.stage("pipeline_3.core_logic")
    samples = core.state_samples
    assert samples["lock_wait"] > 0 and samples["running"] > 0
    assert core.gil_wait_s > 0
    top = core.competitors[0]
    assert top.name == "pipeline_2 thread outside stages" and top.framework
    b = profile.bottleneck
    assert (b.pipeline, b.stage) == ("pipeline_3", "core_logic")
    # Two CPU-bound threads share one GIL: the stage runs about half the time.
    assert b.bound in ("gil", "cpu")
    assert "pipeline_2 thread outside stages" in b.reason
    # Beside a busy loop, every wake-up of a thread of this process waits for the GIL (about a
    # switch interval): the wake-up probe measured it for the pipelines of this process.
    pipe = profile.pipeline("pipeline_3")
    assert pipe.wake_samples > 0
    assert pipe.wake_s >= 0.25 * sys.getswitchinterval()


@pytest.mark.slow
def test_waiting_stage_is_wait_bound_not_gil_bound(flows):
    profile = run_flow(flows / "plain_small.py", [], RunOptions(duration_s=2, call_trees=False))
    storage = profile.stage("pipeline_1.storage")
    assert storage.state_samples["io_wait"] >= storage.state_samples["lock_wait"]


@pytest.mark.slow
def test_a_stage_that_allocates_is_measured(tmp_path):
    flow = tmp_path / "alloc.py"
    flow.write_text(
        "import time, wiredprof\n"
        "@wiredprof.stage('core_logic')\n"
        "def build():\n"
        "    data = bytearray(200 * 2**20)\n"
        "    for i in range(0, len(data), 4096): data[i] = 1\n"
        "    time.sleep(0.3)\n"
        "    return len(data)\n"
        "for _ in range(2):\n"
        "    with wiredprof.pipeline('p'):\n"
        "        build()\n"
    )
    profile = run_flow(flow, [], RunOptions(duration_s=20, call_trees=False))
    peak = profile.stage("p.core_logic").rss_peak_bytes
    # The kernel's RSS counters are approximate (per-CPU batches): 145-172 MiB seen for 200 MiB.
    assert 100 * 2**20 < peak < 400 * 2**20
    assert profile.memory_bytes > 0


@pytest.mark.slow
def test_transfer_sizes_are_measured_on_sampled_calls(tmp_path):
    flow = tmp_path / "big_args.py"
    flow.write_text(
        "import time, wiredprof\n"
        "@wiredprof.stage('core_logic')\n"
        "def crunch(blob):\n"
        "    time.sleep(0.01)\n"
        "    return blob[:1000]\n"
        "for _ in range(3):\n"
        "    with wiredprof.pipeline('p'):\n"
        "        crunch(b'x' * 2_000_000)\n"
    )
    profile = run_flow(flow, [], RunOptions(duration_s=20))
    core = profile.stage("p.core_logic")
    assert core.sampled_calls == 1 and core.calls == 2
    # About 2 MB in and 1 kB out per call, over the 2 timed calls.
    assert 2 * 2_000_000 <= core.bytes_in < 2 * 2_100_000
    assert 2 * 1000 <= core.bytes_out < 2 * 2000


@pytest.mark.slow
def test_a_pipeline_process_killed_by_a_signal_fails_the_run_and_names_the_stage(flows):
    profile = run_flow(flows / "wiredflow_small.py", ["--processes", "--kill"], RunOptions(duration_s=4))
    assert profile.status == "failed"
    assert profile.error is not None and "killed by SIGKILL" in profile.error.message
    core = profile.stage("pipeline_3.core_logic")
    assert core.errors == 1 and core.last_error.type == "Killed"
    assert "pipeline_3.core_logic was running" in core.last_error.message
    assert profile.stage("pipeline_1.storage").errors == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_reference_rounds_are_timed_in_the_stages_process_while_it_runs(flows, mode, monkeypatch):
    """The wake-up probe of the process a stage runs in times the speed loop while it runs (a
    child process reports its rounds with its wake-ups); the planner's ratio comes from them."""
    from wiredprof.profiling import wakeprobe

    monkeypatch.setattr(wakeprobe, "REF_INTERVAL_S", 0.04)  # a round every 40 ms of a stage (forked children too)
    monkeypatch.setattr(wakeprobe, "REF_ITERATIONS", 20_000)
    args = ["--processes"] if mode == "processes" else []
    profile = run_flow(flows / "wiredflow_small.py", args, RunOptions(duration_s=4))
    core = profile.stage("pipeline_3.core_logic")
    assert core.ref_rounds >= 2, core
    # About what the same loop costs this thread here (the machine is shared: within a factor of 5).
    from wiredprof.remote.probe import cpu_loop_times

    here = min(c for _, c in cpu_loop_times(20_000, 5)) / 20_000
    assert here / 5 <= core.ref_iteration_cpu_s <= 5 * here, (core.ref_iteration_cpu_s, here)
    assert profile.stage("pipeline_1.http_connector").ref_rounds <= core.ref_rounds
    # The rounds are wiredprof's own CPU: never charged to a stage as an unknown thread's.
    unknown = [(s.name, c.name) for s in profile.stages for c in s.competitors if re.fullmatch(r"thread \d+", c.name)]
    assert not unknown, unknown
