"""The overhead benchmark's scale cases: a high-rate flow's throughput, and the state sampler's cost.

Throughput: `_throughput_flow.py` (N pipeline threads, each 5 stages of ~0.5 ms sleep plus a
little Python) runs for `seconds`, once as `python` would run it and once under
`wiredprof.runner.run_flow` exactly as `wiredprof analyze` runs it (call trees, the
thread-state sampler process), in this same process, order alternating from round to
round. The figure is the stage calls completed profiled over unprofiled.

Sampler budget: a recorder and its sampler process over N threads that sit in a stage, for a
few seconds: the sampler's own CPU time per second, which must not grow with N.
"""
from __future__ import annotations

import runpy
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks._report import markdown_table
from wiredprof.profiling.recorder import Recorder
from wiredprof.profiling.threads import ThreadStateSampler, proc_available
from wiredprof.runner import RunOptions, run_flow

__all__ = ["PIPELINES", "bench_throughput", "bench_sampler_budget", "markdown"]

FLOW = Path(__file__).with_name("_throughput_flow.py")
PIPELINES = (4, 20, 100)


def _calls(n: int, seconds: float, profiled: bool, extra_loops: int = 0) -> tuple[int, float]:
    """Stage calls one run completed, and this process's CPU seconds while its pipelines ran.

    The CPU is the flow's own measure, from its pipelines' start to their end: what the
    profiler adds per call there, without its start-up and its analysis after the run.
    On a shared machine the calls move with the share of the cores the process gets;
    the CPU per call much less.
    """
    with tempfile.TemporaryDirectory(prefix="wiredprof-throughput-") as tmp:
        out = Path(tmp) / "calls.txt"
        args = ["--pipelines", str(n), "--seconds", str(seconds), "--out", str(out),
                "--extra-loops", str(extra_loops)]
        if profiled:
            run_flow(FLOW, args, RunOptions(duration_s=seconds + 60, flow_stdout_to_stderr=True))
        else:
            saved = sys.argv
            sys.argv = [str(FLOW), *args]
            try:
                runpy.run_path(str(FLOW), run_name="__main__")
            finally:
                sys.argv = saved
        calls, cpu = out.read_text().split()
        return int(calls), float(cpu)


def _loops_per_us() -> float:
    """Iterations of the flow's work loop per microsecond of this thread's CPU (best of 5)."""
    from benchmarks._throughput_flow import _work

    best = float("inf")
    for _ in range(5):
        c0 = time.thread_time()
        _work(1, 20_000)
        best = min(best, time.thread_time() - c0)
    return 20_000 / (best * 1e6)


def bench_throughput(quick: bool, log: Callable[[str], None], added_us: float = 0.0) -> dict[str, Any]:
    """Profiled vs unprofiled at each N; with `added_us`, also a control at the largest N: the
    unprofiled flow with that much more plain Python per stage call (what any per-call cost does)."""
    seconds, rounds, sizes = (2.0, 1, PIPELINES[:2]) if quick else (10.0, 2, PIPELINES)
    out: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "pipelines": {}}
    for n in sizes:
        plain: list[int] = []
        profiled: list[int] = []
        cpu: dict[str, list[float]] = {"plain": [], "profiled": []}
        for r in range(rounds):
            for is_profiled in ((False, True) if r % 2 == 0 else (True, False)):
                calls, secs = _calls(n, seconds, is_profiled)
                (profiled if is_profiled else plain).append(calls)
                cpu["profiled" if is_profiled else "plain"].append(secs / max(1, calls))
        row = {
            "plain_calls": plain,
            "profiled_calls": profiled,
            "ratio_pct": 100.0 * sum(profiled) / max(1, sum(plain)),
            "plain_cpu_us_per_call": statistics.median(cpu["plain"]) * 1e6,
            "profiled_cpu_us_per_call": statistics.median(cpu["profiled"]) * 1e6,
        }
        out["pipelines"][str(n)] = row
        log(f"  throughput N={n:3d}: {sum(plain):,} calls unprofiled, {sum(profiled):,} profiled "
            f"({row['ratio_pct']:.1f} %); CPU per call {row['plain_cpu_us_per_call']:.1f} vs "
            f"{row['profiled_cpu_us_per_call']:.1f} us")
    if added_us > 0:
        n = sizes[-1]
        loops = max(1, round(added_us * _loops_per_us()))
        plain_calls, _ = _calls(n, seconds, False)
        extra_calls, _ = _calls(n, seconds, False, loops)
        out["control"] = {"pipelines": n, "added_us": added_us, "loops": loops, "plain_calls": plain_calls,
                          "extra_calls": extra_calls, "ratio_pct": 100.0 * extra_calls / max(1, plain_calls)}
        log(f"  control N={n}: unprofiled with {added_us:.2f} us more Python per call: "
            f"{out['control']['ratio_pct']:.1f} % of the calls")
    return out


def _sampler_cpu(n: int, seconds: float) -> dict[str, float]:
    rec = Recorder()
    acc = rec.stage("bench", "waiting")
    sampler = ThreadStateSampler(rec)
    sampler.start()
    done = threading.Event()
    ready = threading.Barrier(n + 1)

    def sit_in_a_stage() -> None:
        rec.register_thread("bench", "pipeline")
        start, cpu = rec.enter(acc)
        ready.wait()
        done.wait(seconds + 30)
        rec.exit(acc, start, cpu)

    threads = [threading.Thread(target=sit_in_a_stage, daemon=True) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        ready.wait()
        time.sleep(seconds)
    finally:
        done.set()
        for t in threads:
            t.join(10)
        sampler.stop()
    return {"cpu_share_of_a_core_pct": 100.0 * sampler.cpu_s / seconds, "ticks_per_s": sampler.ticks / seconds}


def bench_sampler_budget(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    if not proc_available():
        return {"skipped": "no per-thread /proc accounting here"}
    seconds = 2.0 if quick else 5.0
    out: dict[str, Any] = {"seconds": seconds, "threads": {}}
    for n in PIPELINES:
        row = out["threads"][str(n)] = _sampler_cpu(n, seconds)
        log(f"  state sampler over {n:3d} threads: {row['cpu_share_of_a_core_pct']:.2f} % of a core, "
            f"{row['ticks_per_s']:.1f} ticks/s")
    return out


def markdown(result: dict[str, Any]) -> list[str]:
    """The report's section on these two cases."""
    tp = result["throughput"]
    lines = [
        "## Throughput of a high-rate flow, profiled vs not",
        "",
        f"`benchmarks/_throughput_flow.py`: N pipelines (threads), each a chain of 5 stages of ~0.5 ms sleep plus "
        f"a little Python, {tp['seconds']:g} s per run, unprofiled (`runpy`, as `python` runs it) and under "
        "`run_flow` as `wiredprof analyze` runs it (call trees on, the thread-state sampler process running), "
        f"in this same process, {tp['rounds']} round(s), order alternating. CPU per call is this process's "
        "CPU time from the pipelines' start to their end over the calls (the profiler's start-up and analysis "
        "after the run not included, nor the sampler process: see below).",
        "",
        markdown_table(["pipelines", "stage calls unprofiled", "stage calls profiled", "profiled / unprofiled",
                        "CPU per call, unprofiled", "CPU per call, profiled"],
                       [[n, f"{sum(row['plain_calls']):,}", f"{sum(row['profiled_calls']):,}", f"{row['ratio_pct']:.1f} %",
                         f"{row['plain_cpu_us_per_call']:.1f} us", f"{row['profiled_cpu_us_per_call']:.1f} us"]
                        for n, row in tp["pipelines"].items()], right=range(6)),
    ]
    control = tp.get("control")
    if control:
        lines += [
            "",
            f"Control, without wiredprof: the same flow at N = {control['pipelines']}, unprofiled, with "
            f"{control['added_us']:.2f} us more plain Python per stage call ({control['loops']} loop iterations; the "
            "instrumentation's measured cost per call in this run) completed "
            f"{control['extra_calls']:,} stage calls against {control['plain_calls']:,}: "
            f"{control['ratio_pct']:.1f} %. At this rate the pipelines' threads queue for the GIL, and any "
            "per-call cost is paid several times over in waiting.",
        ]
    sb = result["sampler_budget"]
    lines += ["", "## The thread-state sampler's cost against the number of threads", ""]
    if "skipped" in sb:
        lines.append(f"Not measured: {sb['skipped']}.")
        return lines
    lines += [
        f"N threads sitting in a stage for {sb['seconds']:g} s; the sampler process's own CPU time (it reads "
        "/proc for every thread of the flow each tick, and stretches its interval to stay within 2 % of a core).",
        "",
        markdown_table(["threads", "sampler CPU, share of a core", "ticks per second"],
                       [[n, f"{row['cpu_share_of_a_core_pct']:.2f} %", f"{row['ticks_per_s']:.1f}"]
                        for n, row in sb["threads"].items()], right=range(3)),
    ]
    return lines
