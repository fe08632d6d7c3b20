"""The cost model and the ranking, on hand-made profiles (pure arithmetic)."""
from __future__ import annotations

import json

import pytest

from tests.profiles import reference, st
from wiredprof.placement.capacity import HostCapacity
from wiredprof.placement.model import flow_busy_cores, make_plan, predict, predict_move, stage_time_ratio
from wiredprof.profile import Competitor, PipelineStats, Profile, ThreadCpu

B = HostCapacity("B", cpu_speed_ratio=4.0, memory_bytes=64 * 2**30, rtt_s=0.001, bandwidth_bytes_per_s=100e6)


def test_reference_case_core_logic_to_b():
    plan = make_plan(reference(core_cpu_ratio=1.0), [B])
    best = plan.best()
    assert (best.stage, best.host) == ("pipeline_3.core_logic", "B")
    # 6 s of CPU at 4x: 1.5 s, plus one round trip.
    assert best.predicted_s == pytest.approx(1.5 + 0.001)
    assert best.gain_s == pytest.approx(6.0 - 1.501)
    assert best.predicted_pipeline_cycle_s == pytest.approx(6.3 - best.gain_s)
    # pipeline_3 drops to 1.8 s: pipeline_1 (2.0 s) becomes the flow's slowest.
    assert best.flow_cycle_s == pytest.approx(6.3)
    assert best.predicted_flow_cycle_s == pytest.approx(2.0)
    assert best.recommended and "x4.00" in best.reason


def test_waiting_stages_are_explicitly_not_recommended():
    plan = make_plan(reference(), [B])
    storage = next(r for r in plan.recommendations if r.stage == "pipeline_1.storage")
    assert not storage.recommended
    assert "waits on I/O 98% of its time; a faster CPU will not help" in storage.reason
    assert [r.recommended for r in plan.recommendations].count(True) == 1
    assert plan.recommendations[0].recommended


def test_io_part_is_not_scaled_and_transfer_is_counted():
    s = st("p", "s", 1.0, 0.5, calls=2, bytes_in=100_000_000, bytes_out=100_000_000)
    # per call: cpu 0.5 / 4 + io 0.5 + 200 MB / 2 calls / 100 MB/s + rtt
    assert predict_move(s, B) == pytest.approx(0.125 + 0.5 + 1.0 + 0.001)


def test_a_slower_host_is_not_recommended():
    slow = HostCapacity("C", cpu_speed_ratio=0.5)
    plan = make_plan(reference(core_cpu_ratio=1.0), [slow])
    core = next(r for r in plan.recommendations if r.stage == "pipeline_3.core_logic")
    assert not core.recommended and "slower on C" in core.reason


def test_memory_that_does_not_fit_is_never_placed():
    small = HostCapacity("A2", cpu_speed_ratio=4.0, memory_bytes=4 * 2**30)
    plan = make_plan(reference(core_cpu_ratio=1.0, rss_peak_bytes=6 * 2**30), [small, B])
    core = [r for r in plan.recommendations if r.stage == "pipeline_3.core_logic"]
    by_host = {r.host: r for r in core}
    assert not by_host["A2"].recommended and "does not fit: needs 6.0 GiB, A2 has 4.0 GiB" in by_host["A2"].reason
    assert by_host["B"].recommended and "fits in 64.0 GiB" in by_host["B"].reason


def test_gil_freed_for_the_other_pipelines_in_threads_mode():
    prof = reference(core_cpu_ratio=1.0)
    # pipeline_1.storage waited 1.0 s for the GIL while core_logic computed.
    stages = [s if s.name != "pipeline_1.storage" else
              st("pipeline_1", "storage", 1.5, 0.02, gil_ratio=4.0 / 6.0,
                 competitors=[Competitor("pipeline_3.core_logic", 8.0)])
              for s in prof.stages]
    prof = type(prof)(**{**prof.__dict__, "stages": stages})
    best = make_plan(prof, [B]).best()
    assert best.stage == "pipeline_3.core_logic"
    # pipeline_1 gets its 1.0 s of GIL wait per cycle back: 2.0 -> 1.0 s; pipeline_3 is the slowest again.
    assert best.predicted_flow_cycle_s == pytest.approx(best.predicted_pipeline_cycle_s)
    # In processes mode there is no shared GIL to free: pipeline_1 stays at 2.0 s.
    processes = make_plan(type(prof)(**{**prof.__dict__, "mode": "processes"}), [B]).best()
    assert processes.predicted_flow_cycle_s == pytest.approx(2.0)


def test_plan_json_contract():
    d = json.loads(make_plan(reference(core_cpu_ratio=1.0), [B], "before.json").to_json())
    assert d["schema"] == "wiredprof.plan/1"
    first = d["recommendations"][0]
    assert {"stage", "host", "current_s", "predicted_s", "gain_s"} <= set(first)


def test_a_stage_that_does_not_fit_here_is_moved_where_it_fits():
    prof = reference(core_cpu_ratio=1.0, rss_peak_bytes=500 * 2**20)
    prof = type(prof)(**{**prof.__dict__, "memory_bytes": 300 * 2**20})
    same_speed = HostCapacity("B", cpu_speed_ratio=1.0, memory_bytes=64 * 2**30)
    best = make_plan(prof, [same_speed]).best()
    assert best.stage == "pipeline_3.core_logic" and best.recommended
    assert "does not fit here: needs 500 MiB of this host's 300 MiB; B has 64.0 GiB" in best.reason


def test_cpu_quota_throttled_stage_moves_its_cpu_seconds_not_its_queue():
    # A stage throttled by a CPU quota (a container's CPU limit, benchmarks/reference.py's host A):
    # 1.5 s of CPU per call, 4.5 s runnable but queued for the quota, 0.05 s of I/O.
    s = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5)
    # The probe in the same cgroup: the loop's wall time here is 4x B's, its CPU time 1x.
    host = HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=1.0, rtt_s=0.001)
    assert predict_move(s, host) == pytest.approx(1.5 + 0.05 + 0.001)
    # A host with 2x the CPU-time speed: CPU seconds halve, the queue still stays here.
    assert predict_move(s, HostCapacity("B2", cpu_speed_ratio=8.0, cpu_time_ratio=2.0)) == pytest.approx(0.75 + 0.05)


def test_the_stages_own_reference_rounds_replace_the_probes_ratio():
    """Its process paid 1.25x B's time per iteration of the probe's loop while it ran (a throttled,
    polluted A at that moment), though the probe, alone and later, saw 1.0x: the CPU seconds the stage
    took are set against the rounds it ran beside, not against the probe."""
    s = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5, ref_iteration_cpu_s=1.25e-7, ref_rounds=6)
    host = HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=1.0, rtt_s=0.001, loop_iteration_s=1.0e-7)
    assert predict_move(s, host) == pytest.approx(1.5 / 1.25 + 0.05 + 0.001)
    assert stage_time_ratio(s, host) == (pytest.approx(1.25), True)
    plan = make_plan(Profile(flow="f.py", wall_s=13, pipelines=[PipelineStats("p", 6.1, 2, 1.0, utilisation=0.95)],
                             stages=[s]), [host])
    assert "x1.25 the CPU time this stage's process took for the same work as it ran: 6 reference rounds" \
        in plan.recommendations[0].reason
    # Too few rounds, or a probe without the loop's time per iteration: the probe's ratio.
    few = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5, ref_iteration_cpu_s=1.25e-7, ref_rounds=2)
    assert predict_move(few, host) == pytest.approx(1.5 + 0.05 + 0.001)
    old = HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=1.0, rtt_s=0.001)
    assert stage_time_ratio(s, old) == (1.0, False) and predict_move(s, old) == pytest.approx(1.5 + 0.05 + 0.001)


def test_without_a_cpu_time_ratio_queued_time_is_kept_as_waiting():
    # A probe saved by an older wiredprof (no CPU-time ratio): the old model, unchanged.
    s = st("p", "s", 6.05, 1.5 / 6.05, calls=2, cpu_queue_s=2 * 4.5)
    assert predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0, rtt_s=0.001)) == pytest.approx(
        1.5 / 4 + 4.5 + 0.05 + 0.001)


def test_a_really_slower_cpu_gives_the_same_prediction_either_way():
    # Real slower hardware: no queueing, the CPU-time ratio equals the wall-time ratio.
    s = st("p", "s", 6.0, 1.0, calls=2)
    a = predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0, cpu_time_ratio=4.0))
    b = predict_move(s, HostCapacity("B", cpu_speed_ratio=4.0))
    assert a == pytest.approx(b) == pytest.approx(1.5)


# -- only what offload accepts -----------------------------------------------------------


def test_stages_offload_refuses_are_listed_last_and_never_recommended():
    refusals = {"pipeline_3.core_logic": "pipeline_3.core_logic is wiredflow's built-in X; only stages built "
                                         "from your own callables can be offloaded"}
    plan = make_plan(reference(core_cpu_ratio=1.0), [B], refusals=refusals)
    core = next(r for r in plan.recommendations if r.stage == "pipeline_3.core_logic")
    assert not core.recommended and not core.offloadable
    assert core.reason.startswith("not offloadable: pipeline_3.core_logic is wiredflow's built-in X")
    assert plan.recommendations[-1] is core and plan.best() is None
    # The same profile without the refusal: recommended.
    assert make_plan(reference(core_cpu_ratio=1.0), [B]).best().stage == "pipeline_3.core_logic"


# -- call-backs to A ----------------------------------------------------------------------


def callback_stage(callback_share: float, calls: int = 4, per_call_bytes: int = 2_000_000):
    """A 1 s call: 0.5 s own CPU, the rest call-backs (wall), 2 call-backs a call."""
    cb = callback_share * 1.0
    return st("p", "core_logic", 1.0, 0.5 + 0.1 * cb, calls=calls, callbacks=2 * calls,
              callback_s=cb * calls, callback_cpu_s=0.1 * cb * calls, callback_bytes=per_call_bytes * calls,
              callback_pickle_s=0.01 * calls, callback_unpickle_s=0.02 * calls)


def test_call_backs_stay_on_a_in_the_prediction():
    s = callback_stage(0.4)
    p = predict(s, B)
    # own: 0.5 s CPU / 4 + 0.1 s of own wait; call-backs: 0.4 s of work here, 2 round trips,
    # 2 MB at 100 MB/s, pickled here (0.01 s), unpickled there (0.02 s / 4).
    assert p.compute_s == pytest.approx(0.125)
    assert p.wait_s == pytest.approx(0.1)
    assert p.callback_s == pytest.approx(0.4 + 2 * 0.001 + 0.02 + 0.01 + 0.005)
    assert p.seconds == pytest.approx(0.125 + 0.1 + 0.001 + p.callback_s)
    assert p.callbacks_per_call == 2


def test_call_backs_that_dominate_are_not_recommended_and_said_why():
    prof = Profile(flow="f.py", wall_s=30, pipelines=[PipelineStats("p", 1.2, 4, 1.0)],
                   stages=[callback_stage(0.9)])
    rec = make_plan(prof, [B]).recommendations[0]
    assert not rec.recommended
    assert rec.reason.startswith("not recommended: call-backs to A dominate")
    assert "2 call-backs to A per call" in rec.reason and "stays here" in rec.reason
    assert "no longer waits for this process's GIL" not in rec.reason
    # A stage with few call-backs is still recommended, with them in the reason.
    light = Profile(flow="f.py", wall_s=30, pipelines=[PipelineStats("p", 1.2, 4, 1.0)],
                    stages=[callback_stage(0.05, per_call_bytes=1000)])
    rec = make_plan(light, [B]).recommendations[0]
    assert rec.recommended and "call-backs to A per call" in rec.reason


# -- B's free capacity --------------------------------------------------------------------


def busy_profile(spinner: bool, mode: str = "threads") -> Profile:
    prof = reference(core_cpu_ratio=1.0, mode=mode)
    threads = [ThreadCpu("t3", "pipeline_3", "pipeline", 24.0, 24.0),
               ThreadCpu("t2", "pipeline_2", "pipeline", 15.0 if spinner else 3.0, 0.4)]
    return type(prof)(**{**prof.__dict__, "threads": threads})


def test_flow_busy_cores_after_the_move():
    core = busy_profile(False).stage("pipeline_3.core_logic")  # 24 s of CPU in a 30 s run
    assert flow_busy_cores(busy_profile(False), core) == pytest.approx(3.0 / 30)
    # A busy loop in threads mode takes the GIL time the moved stage frees: nothing taken off.
    assert flow_busy_cores(busy_profile(True), core) == pytest.approx((24.0 + 15.0) / 30)
    # In processes mode there is no GIL to take: the moved stage's CPU leaves.
    assert flow_busy_cores(busy_profile(True, "processes"), core) == pytest.approx(15.0 / 30)


def test_same_machine_charges_the_flows_own_busy_cores():
    prof = busy_profile(True)
    core = prof.stage("pipeline_3.core_logic")
    free = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=1.0, cores=2)
    shared = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=1.0, cores=2, same_machine=True)
    assert predict(core, free, prof).seconds == pytest.approx(6.0)
    p = predict(core, shared, prof)
    # 1.3 busy cores of the flow + the stage's worker on 2 cores: each gets 2 / 2.3 of one.
    assert p.contention == pytest.approx(2.3 / 2)
    assert p.seconds == pytest.approx(6.0 * 2.3 / 2)
    # The range reaches down to the uncharged time.
    assert p.low_s < 6.0 < p.seconds < p.high_s
    core_rec = next(r for r in make_plan(prof, [shared]).recommendations if r.stage == core.name)
    assert not core_rec.recommended and core_rec.reason.startswith("not recommended: slower on B")
    assert "is this machine (same machine-id and boot id)" in core_rec.reason and "x1.15 longer" in core_rec.reason
    # Other load the probe saw is already in its speed ratio: charged only for the flow's share.
    loaded = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=1.0, cores=2, same_machine=True, busy_cores=1.0)
    assert predict(core, loaded, prof).contention == pytest.approx((2 / 2.0) / (2 / 3.3))


# -- ranges -------------------------------------------------------------------------------


def test_the_range_grows_with_the_stage_spread_and_the_probe_spread():
    steady = st("p", "s", 2.0, 1.0, calls=9)  # p95 == mean
    spread = type(steady)(**{**steady.__dict__, "p95_s": 3.0})
    host = HostCapacity("B", cpu_speed_ratio=2.0)
    a, b = predict(steady, host), predict(spread, host)
    assert a.seconds == pytest.approx(b.seconds) == pytest.approx(1.0)
    assert a.high_s - a.low_s == pytest.approx(2 * 0.03 * 1.0)  # the floor
    assert b.high_s - b.low_s > 5 * (a.high_s - a.low_s)
    noisy = predict(steady, HostCapacity("B", cpu_speed_ratio=2.0, ratio_spread=0.2))
    assert noisy.high_s - noisy.low_s > 5 * (a.high_s - a.low_s)
    rec = make_plan(Profile(flow="f", wall_s=20, pipelines=[PipelineStats("p", 2.0, 9, 1.0)], stages=[spread]),
                    [host]).recommendations[0]
    assert rec.hit(rec.predicted_s) and rec.hit(rec.predicted_high_s)
    assert not rec.hit(rec.predicted_high_s * 1.01) and not rec.hit(rec.predicted_low_s * 0.99)
    d = json.loads(make_plan(reference(), [B]).to_json())["recommendations"][0]
    assert {"predicted_low_s", "predicted_high_s", "callbacks_per_call", "offloadable"} <= set(d)


def test_a_queued_probe_loop_counts_the_hosts_other_load_in_threads():
    prof = busy_profile(True)
    core = prof.stage("pipeline_3.core_logic")
    # The loop got half a core on 2 busy cores: 3 other runnable threads, not 2.
    host = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=0.5, cores=2, same_machine=True,
                        busy_cores=2.0, loop_share=0.5)
    assert predict(core, host, prof).contention == pytest.approx((2 / 4.0) / (2 / 5.3))


def test_a_probe_loop_that_had_a_core_of_its_own_says_nothing_of_other_load():
    """CPU over wall of 0.997 on an idle host is the kernel's time, not 1.01 other runnable
    threads: only the flow's own busy threads are charged (the loopback reference sample was
    predicted 2.5 % slow for that)."""
    prof = busy_profile(True)
    core = prof.stage("pipeline_3.core_logic")
    busy = flow_busy_cores(prof, core)
    host = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=1.0, cores=2, same_machine=True,
                        busy_cores=0.0, loop_share=0.997)
    assert predict(core, host, prof).contention == pytest.approx(1.0 / min(1.0, 2 / (busy + 1.0)))
    queued = HostCapacity("B", cpu_speed_ratio=1.0, cpu_time_ratio=1.0, cores=2, same_machine=True,
                          busy_cores=0.0, loop_share=0.9)
    assert predict(core, queued, prof).contention > predict(core, host, prof).contention


def test_the_range_spans_the_probes_slowest_and_fastest_rounds():
    s = st("p", "s", 2.0, 1.0, calls=9)
    host = HostCapacity("B", cpu_speed_ratio=2.0, cpu_time_ratio=2.0, ratio_low=1.0, ratio_high=4.0)
    p = predict(s, host)
    assert p.seconds == pytest.approx(1.0)
    assert p.low_s == pytest.approx(0.5 - 0.03, abs=1e-9)  # 2 s of CPU at x4, less the stage's own 3 %
    assert p.high_s == pytest.approx(2.0 + 0.03, abs=1e-9)  # at x1


def test_nothing_is_recommended_for_a_flow_limited_by_its_schedule():
    """An idle flow (no pipeline busy half the time) does not do more with a shorter cycle."""
    from dataclasses import replace

    from wiredprof.analysis import analyze

    busy = analyze(reference(core_cpu_ratio=1.0))
    assert busy.bottleneck is not None and busy.bottleneck.bound != "idle"
    idle = analyze(replace(busy, wall_s=1000.0, pipelines=[replace(p, utilisation=0.02) for p in busy.pipelines]))
    assert idle.bottleneck is not None and idle.bottleneck.bound == "idle"
    plan = make_plan(idle, [B])
    assert not any(r.recommended for r in plan.recommendations)
    core = next(r for r in plan.recommendations if r.stage == "pipeline_3.core_logic")
    assert core.reason.startswith("not recommended: the flow is limited by its schedule, not by a stage "
                                  "(pipeline_3 is busy 2% of the time)"), core.reason


def test_a_gil_bound_stage_keeps_the_wake_ups_of_its_reply_here():
    """In a process whose other threads busy-loop, a 1 % CPU stage waits 39 ms for the GIL. On B its
    Python work no longer does, but its reply still wakes threads here one after another, each
    waiting as long as the process's wake-up probe measured: predicted once as 0.8 ms, measured 21 ms."""
    stage = st("pipeline_2", "mqtt_connector", 0.0395, 0.01, calls=50, gil_ratio=0.98)
    pipes = [PipelineStats("pipeline_2", 0.05, 50, 1.0, wake_s=0.0065, wake_samples=400)]
    prof = Profile(flow="f.py", wall_s=10.0, pipelines=pipes, stages=[stage])
    ssh = HostCapacity("B", cpu_speed_ratio=1.0, rtt_s=0.0005, reply_wakes=3)
    pred = predict(stage, ssh, prof)
    assert pred.wake_s == pytest.approx(3 * 0.0065)
    assert pred.seconds == pytest.approx(0.000395 + 0.0005 + 3 * 0.0065, rel=0.05)
    rec = make_plan(prof, [ssh]).recommendations[0]
    assert "wakes 3 threads here one after another" in rec.reason and "6.5 ms" in rec.reason
    # Not measured (an older profile): nothing is charged, as before.
    unmeasured = Profile(flow="f.py", wall_s=10.0, pipelines=[PipelineStats("pipeline_2", 0.05, 50, 1.0)],
                         stages=[stage])
    assert predict(stage, ssh, unmeasured).wake_s == 0.0
    # Each call-back to A wakes as many threads again.
    calling = st("pipeline_2", "mqtt_connector", 0.0395, 0.01, calls=50, gil_ratio=0.5,
                 callbacks=100, callback_s=0.05, callback_cpu_s=0.001)
    assert predict(calling, ssh, prof).wake_s == pytest.approx(3 * 3 * 0.0065)


def test_the_wake_ups_while_the_stage_itself_ran_are_not_charged():
    """A CPU-bound stage in a process of its own under a CPU quota delays its process's wake-ups
    (17.5 ms each) only while it runs; without it they wait 1 ms: that is what its replies pay."""
    stage = st("pipeline_3", "core_logic", 4.0, 0.75, calls=3, wake_s=0.001, wake_samples=200)
    pipes = [PipelineStats("pipeline_3", 4.2, 3, 1.0, wake_s=0.0175, wake_samples=376)]
    prof = Profile(flow="f.py", wall_s=13.0, pipelines=pipes, stages=[stage], mode="processes")
    ssh = HostCapacity("B", cpu_speed_ratio=4.0, rtt_s=0.0005, reply_wakes=3)
    assert predict(stage, ssh, prof).wake_s == pytest.approx(3 * 0.001)


def test_the_start_acknowledgements_wake_ups_count_only_when_the_work_on_b_does_not_hide_them():
    """B acknowledges the start of a call (at most once) before it runs it: those wake-ups here
    overlap B's work, and are paid only when the work is shorter than they are."""
    ssh = HostCapacity("B", cpu_speed_ratio=1.0, rtt_s=0.0005, reply_wakes=3, ack_wakes=2)
    pipes = [PipelineStats("p", 0.05, 50, 1.0, wake_s=0.0065, wake_samples=400)]
    short = st("p", "short", 0.0395, 0.01, calls=50, gil_ratio=0.98)  # 0.4 ms CPU, 0.4 ms I/O
    prof = Profile(flow="f.py", wall_s=10.0, pipelines=pipes, stages=[short])
    assert predict(short, ssh, prof).wakes_per_call == pytest.approx(3 + 2 * (1 - 0.00079 / 0.013), rel=1e-3)
    long = st("p", "long", 4.0, 0.95, calls=3)
    prof = Profile(flow="f.py", wall_s=10.0, pipelines=pipes, stages=[long])
    assert predict(long, ssh, prof).wakes_per_call == 3
