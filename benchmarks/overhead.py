"""What wiredprof's instrumentation costs per stage call, next to cProfile, yappi and pyinstrument.

Everything runs side by side in ONE process: this machine drifts 10-15 % between
processes, so comparing two runs would measure the drift. For each workload and tool the
script times a stretch of plain calls and a stretch of instrumented calls back to back
(order alternating from round to round), many rounds over, and takes the median of the
paired differences per call.

Workloads (each is one "stage call"):
  trivial   a stage that returns at once
  cpu_1ms   about 1 ms of pure-Python CPU work (a loop, calibrated on this machine)
  deep      a chain of 50 nested Python calls (a profile hook pays for every one)

Tools:
  wiredprof            `@wiredprof.stage(...)` with a live recorder, set up as `wiredprof
                       analyze` sets it up (wall + thread CPU time per call, DDSketch p95,
                       timeline window, call-tree sampler consulted)
  wiredprof-inactive   the same decorator outside a profiler run
  cProfile, yappi (cpu clock), pyinstrument (interval 1 ms, as wiredprof's sampler):
                       the profiler started around the stretch of plain calls

Also measured: memory growth after 10^6 stage calls through the recorder (tracemalloc and
RSS) against keeping every span, a reference-like CPU stage (calls of ~5 ms of pure
Python) timed from outside with and without instrumentation, the throughput of a
high-rate flow of N = 4, 20, 100 pipelines profiled vs not, and the thread-state
sampler's own CPU against the number of threads (see _throughput.py).

    PYTHONPATH=$PWD python benchmarks/overhead.py --report   # full run, writes benchmarks/reports/overhead.md
    PYTHONPATH=$PWD python -m benchmarks.overhead --quick --json --report /tmp/o.md
"""
from __future__ import annotations

import gc
import os
import shlex
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    # Run as a script: make `wiredprof` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wiredprof  # noqa: E402
from benchmarks import _throughput  # noqa: E402
from benchmarks._machine import loadavg, machine_info as _machine_info  # noqa: E402
from benchmarks._report import markdown_table, quick_json_main  # noqa: E402
from wiredprof.profile import TimelineSpan  # noqa: E402
from wiredprof.profiling.accumulators import CPU_EVERY_CALL_S, CPU_READ_EVERY  # noqa: E402
from wiredprof.profiling.calltree import CallTreeSampler  # noqa: E402
from wiredprof.profiling.recorder import Recorder, set_current_recorder  # noqa: E402

SCHEMA = "wiredprof.bench.overhead/1"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = REPO / "benchmarks" / "reports" / "overhead.md"

# Targets of issue 3, item 9, and issue 12.
TARGET_PER_CALL_US = 2.0
TARGET_MEMORY_MB = 20.0
TARGET_TIMING_PCT = 1.0
TARGET_THROUGHPUT_PCT = 95.0  # profiled over unprofiled, at N = 100 pipelines

DEEP_DEPTH = 50


# -- workloads --------------------------------------------------------------------------
def trivial() -> None:
    return None


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def _chain(n: int) -> int:
    return _chain(n - 1) + 1 if n else 0


def deep() -> int:
    return _chain(DEEP_DEPTH - 2)  # deep() itself plus _chain(48) .. _chain(0): 50 Python calls


def calibrate_spin(target_s: float) -> int:
    """Loop count of `_spin` that takes about `target_s` on this machine (median of a few)."""
    n = 2000
    while True:
        t0 = time.perf_counter()
        _spin(n)
        dt = time.perf_counter() - t0
        if dt > 0.002:
            break
        n *= 2
    n = max(1, int(n * target_s / dt))
    samples = []
    for _ in range(7):
        t0 = time.perf_counter()
        _spin(n)
        samples.append(time.perf_counter() - t0)
    return max(1, int(n * target_s / statistics.median(samples)))


# -- tools ------------------------------------------------------------------------------
def new_recorder() -> Recorder:
    """A recorder as `wiredprof analyze` sets one up (call-tree sampler on)."""
    rec = Recorder()
    rec.call_trees = CallTreeSampler()
    rec.register_thread("bench", "pipeline")
    return rec


@dataclass
class Tool:
    name: str
    note: str
    # Given the plain function, returns (function to call, start, stop).
    prepare: Callable[[Callable[[], Any], str], tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]]


def _noop() -> None:
    pass


def _prep_wiredprof(fn: Callable[[], Any], name: str) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]:
    rec = new_recorder()
    staged = wiredprof.stage(name, pipeline="bench")(fn)
    return staged, lambda: set_current_recorder(rec), lambda: set_current_recorder(None)


def _prep_inactive(fn: Callable[[], Any], name: str) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]:
    set_current_recorder(None)
    return wiredprof.stage(name, pipeline="bench")(fn), _noop, _noop


def _prep_cprofile(fn: Callable[[], Any], name: str) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]:
    import cProfile

    holder: dict[str, Any] = {}

    def start() -> None:
        holder["p"] = cProfile.Profile()
        holder["p"].enable()

    def stop() -> None:
        holder.pop("p").disable()

    return fn, start, stop


def _prep_yappi(fn: Callable[[], Any], name: str) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]:
    import yappi

    yappi.set_clock_type("cpu")

    def start() -> None:
        yappi.start()

    def stop() -> None:
        yappi.stop()
        yappi.clear_stats()

    return fn, start, stop


def _prep_pyinstrument(fn: Callable[[], Any], name: str) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], None]]:
    from pyinstrument import Profiler

    holder: dict[str, Any] = {}

    def start() -> None:
        holder["p"] = Profiler(interval=0.001, async_mode="disabled")
        holder["p"].start()

    def stop() -> None:
        holder.pop("p").stop()

    return fn, start, stop


def available_tools() -> tuple[list[Tool], list[str]]:
    tools = [
        Tool("wiredprof", "@wiredprof.stage with a live recorder as analyze sets it up (wall + thread CPU, "
                          "p95 sketch, timeline window, call-tree sampler consulted)",
             _prep_wiredprof),
        Tool("wiredprof-inactive", "@wiredprof.stage, no profiler run", _prep_inactive),
        Tool("cProfile", "cProfile.Profile enabled around the stretch", _prep_cprofile),
    ]
    skipped = []
    try:
        import yappi  # noqa: F401

        tools.append(Tool("yappi", "yappi.start() around the stretch, cpu clock", _prep_yappi))
    except ImportError:
        skipped.append("yappi (not installed: pip install yappi)")
    try:
        import pyinstrument  # noqa: F401

        tools.append(Tool("pyinstrument", "pyinstrument.Profiler(interval=1 ms) around the stretch",
                          _prep_pyinstrument))
    except ImportError:
        skipped.append("pyinstrument (not installed)")
    return tools, skipped


# -- measuring --------------------------------------------------------------------------
def stretch(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """Wall and thread-CPU seconds for `n` calls of `fn` (the loop is the same for every tool).

    CPU time of this thread leaves out the time other processes of a shared machine take
    from it; wall time includes it (on a busy machine, wall costs are CPU costs divided by
    the share of a core the process gets).
    """
    clock, cpu_clock = time.perf_counter, time.thread_time
    t0, c0 = clock(), cpu_clock()
    for _ in range(n):
        fn()
    return clock() - t0, cpu_clock() - c0


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile (a whole percent), linear between order statistics (statistics' "inclusive")."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def median_ci95(values: list[float]) -> tuple[float, float]:
    """Distribution-free 95 % confidence interval of the median (order statistics)."""
    vs = sorted(values)
    n = len(vs)
    k = max(0, int((n - 1.96 * n ** 0.5) / 2))
    return vs[k], vs[n - 1 - k]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p25": quantile(values, 0.25),
        "p75": quantile(values, 0.75),
    }


def measure_pairs(
    plain: Callable[[], Any],
    instrumented: Callable[[], Any],
    start: Callable[[], None],
    stop: Callable[[], None],
    n: int,
    rounds: int,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Per-call (wall, cpu) seconds of plain and instrumented stretches, paired, order alternating."""
    # Warm up both paths (first calls create accumulators, sketch bins, ...). At least two
    # calls: the call-tree sampler takes a stage's 2nd call when its calls last 2 ms or more.
    stretch(plain, max(2, n // 10))
    start()
    try:
        stretch(instrumented, max(2, n // 10))
    finally:
        stop()
    plains, instr = [], []
    for r in range(rounds):
        if r % 2 == 0:
            p = stretch(plain, n)
            start()
            try:
                i = stretch(instrumented, n)
            finally:
                stop()
        else:
            start()
            try:
                i = stretch(instrumented, n)
            finally:
                stop()
            p = stretch(plain, n)
        plains.append((p[0] / n, p[1] / n))
        instr.append((i[0] / n, i[1] / n))
    return plains, instr


def bench_per_call(quick: bool, tools: list[Tool], log: Callable[[str], None]) -> dict[str, Any]:
    spin_1ms = calibrate_spin(0.001)

    def cpu_1ms() -> int:
        return _spin(spin_1ms)

    # (workload, function, calls per stretch, rounds)
    if quick:
        workloads = [("trivial", trivial, 2000, 5), ("cpu_1ms", cpu_1ms, 3, 5), ("deep", deep, 200, 5)]
    else:
        workloads = [("trivial", trivial, 20000, 41), ("cpu_1ms", cpu_1ms, 20, 61), ("deep", deep, 2000, 41)]
    out: dict[str, Any] = {"spin_1ms_loops": spin_1ms, "workloads": {}}
    for wname, fn, n, rounds in workloads:
        rows: dict[str, Any] = {}
        for tool in tools:
            instrumented, start, stop = tool.prepare(fn, wname)
            gc.collect()
            pairs = measure_pairs(fn, instrumented, start, stop, n, rounds)
            set_current_recorder(None)
            row: dict[str, Any] = {"calls_per_stretch": n, "pairs": rounds}
            for k, suffix in ((0, ""), (1, "_cpu")):  # wall clock, then this thread's CPU time
                plains = [p[k] for p in pairs[0]]
                instr = [i[k] for i in pairs[1]]
                d = summary([i - p for p, i in zip(plains, instr)])
                ratios = [(i - p) / p for p, i in zip(plains, instr) if p > 0]
                row.update({
                    f"added{suffix}_us": d["median"] * 1e6,
                    f"added{suffix}_us_p25": d["p25"] * 1e6,
                    f"added{suffix}_us_p75": d["p75"] * 1e6,
                    f"plain{suffix}_us": statistics.median(plains) * 1e6,
                    f"instrumented{suffix}_us": statistics.median(instr) * 1e6,
                    f"slowdown{suffix}_pct": statistics.median(ratios) * 100 if ratios else 0.0,
                    f"slowdown{suffix}_pct_p25": quantile(ratios, 0.25) * 100 if ratios else 0.0,
                    f"slowdown{suffix}_pct_p75": quantile(ratios, 0.75) * 100 if ratios else 0.0,
                })
            rows[tool.name] = row
            log(f"  {wname:8s} {tool.name:19s} +{row['added_cpu_us']:9.3f} us/call CPU, "
                f"+{row['added_us']:9.3f} wall ({row['slowdown_cpu_pct']:+.1f} % CPU)")
        out["workloads"][wname] = rows
    return out


def clock_costs() -> dict[str, float]:
    """ns per call of the clocks a stage call reads (the floor of any per-call timer)."""
    import timeit

    out = {}
    for name, fn in (("perf_counter", time.perf_counter), ("thread_time", time.thread_time),
                     ("thread_time_ns", time.thread_time_ns)):
        best = min(timeit.repeat(fn, number=200000, repeat=5)) / 200000
        out[name] = best * 1e9
    return out


def breakdown(quick: bool) -> dict[str, float]:
    """Where a stage call's time goes, hot (the same call repeated): ns per call of each layer.

    Each layer includes the ones below it; all measured back to back, best of 7 repeats
    (3 in a quick run).
    """
    import timeit

    from wiredprof.profiling.instrument import timed_call

    rec = new_recorder()
    staged = wiredprof.stage("layers", pipeline="bench")(trivial)
    acc = rec.stage("bench", "layers")
    enter, exit_, call = rec.enter, rec.exit, rec.call
    pc, tt = time.perf_counter, time.thread_time
    no_args: tuple[Any, ...] = ()
    no_kwargs: dict[str, Any] = {}

    def clocks() -> None:
        pc()
        tt()
        pc()
        tt()

    def enter_exit() -> None:
        s, c = enter(acc)
        exit_(acc, s, c)

    layers: dict[str, Callable[[], Any] | float] = {
        "plain call": trivial,
        "4 clock reads (2 perf_counter, 2 thread_time)": clocks,
        "fold of a batch of spans, per span": _fold_cost(rec, acc),
        "Recorder.enter + exit": enter_exit,
        "Recorder.call": lambda: call(acc, trivial, no_args, no_kwargs),
        "timed_call": lambda: timed_call(rec, acc, trivial),
        "@wiredprof.stage call": staged,
    }
    n, repeat = (10_000, 3) if quick else (100_000, 7)
    out = {}
    set_current_recorder(rec)
    try:
        for name, fn in layers.items():
            if isinstance(fn, float):
                out[name] = fn
                continue
            out[name] = min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e9
    finally:
        set_current_recorder(None)
    return out


def _fold_cost(rec: Recorder, acc: Any) -> float:
    """ns per span of folding a thread's batch of finished spans (best of 20 batches)."""
    from wiredprof.profiling.recorder import FOLD_EVERY

    s, c = rec.enter(acc)
    rec.exit(acc, s, c)
    ts = rec._local.ts
    rec.flush_thread()
    batch = [(acc.number, 1.0, 1e-6 * (1 + k % 7), 1e-7, False, False) for k in range(FOLD_EVERY)]
    best = float("inf")
    for _ in range(20):
        ts.pending[:] = batch
        t0 = time.perf_counter()
        rec.flush_thread()
        best = min(best, time.perf_counter() - t0)
    return best / FOLD_EVERY * 1e9


def cold_and_warm(quick: bool, spin_loops: int) -> dict[str, Any]:
    """What the steps of a stage call's bookkeeping cost right after 1 ms of Python work.

    In a real flow the bookkeeping at the end of a stage call runs after the stage's own
    work, not after an identical call: what it touches is then less likely to be in the
    CPU's caches. Each step is timed right after `_spin` (1 ms) and then once more at once;
    median ns of wall time over many tries (short windows: preemption is rare in them).
    """
    rec = new_recorder()
    acc = rec.stage("bench", "cold")
    pc, tt = time.perf_counter, time.thread_time
    tries = 30 if quick else 300

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("plain function call", trivial),
        ("time.perf_counter()", pc),
        ("time.thread_time()", tt),
    ]
    out: dict[str, Any] = {"tries": tries}
    for name, fn in steps:
        cold, warm = [], []
        for _ in range(tries):
            _spin(spin_loops)
            t0 = pc()
            fn()
            t1 = pc()
            fn()
            t2 = pc()
            cold.append(t1 - t0)
            warm.append(t2 - t1)
        out[name] = {"after_1ms_ns": statistics.median(cold) * 1e9, "again_ns": statistics.median(warm) * 1e9}
    # Recorder.exit closing a call whose body was the 1 ms of work, then one with an empty body.
    cold, warm = [], []
    for _ in range(tries):
        s, c = rec.enter(acc)
        _spin(spin_loops)
        t0 = pc()
        rec.exit(acc, s, c)
        t1 = pc()
        s, c = rec.enter(acc)
        t2 = pc()
        rec.exit(acc, s, c)
        t3 = pc()
        cold.append(t1 - t0)
        warm.append(t3 - t2)
    out["Recorder.exit"] = {"after_1ms_ns": statistics.median(cold) * 1e9, "again_ns": statistics.median(warm) * 1e9}
    return out


# -- memory -----------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _recorder_calls(calls: int) -> tuple[Callable[[], None], Recorder]:
    rec = new_recorder()
    staged = wiredprof.stage("mem", pipeline="bench")(trivial)

    def run() -> None:
        set_current_recorder(rec)
        try:
            for _ in range(calls):
                staged()
        finally:
            set_current_recorder(None)

    return run, rec


def _span_list(calls: int, kind: str) -> Callable[[], list[Any]]:
    clock, cpu_clock = time.perf_counter, time.thread_time
    t0 = clock()

    def run() -> list[Any]:
        spans: list[Any] = []
        for _ in range(calls):
            start, cpu0 = clock(), cpu_clock()
            trivial()
            wall, cpu = clock() - start, cpu_clock() - cpu0
            if kind == "tuple":
                spans.append(("bench", "mem", "local", start - t0, wall, cpu, False, False))
            else:
                spans.append(TimelineSpan("bench", "mem", "local", start - t0, wall, cpu, False, False))
        return spans

    return run


def _grow(run: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run `run` under tracemalloc: what it left allocated, and the peak on the way."""
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    kept = run()
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return kept, {"tracemalloc_mb": (after - before) / 1e6, "tracemalloc_peak_mb": (peak - before) / 1e6}


def bench_memory(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    calls = 100_000 if quick else 1_000_000
    out: dict[str, Any] = {"calls": calls}

    # RSS first, without tracemalloc (tracemalloc's own bookkeeping would be counted).
    for label, make in (
        ("recorder", lambda: _recorder_calls(calls)[0]),
        ("span_tuples", lambda: _span_list(calls, "tuple")),
        ("span_objects", lambda: _span_list(calls, "object")),
    ):
        run = make()
        gc.collect()
        rss0 = _rss_bytes()
        t0 = time.perf_counter()
        kept = run()
        secs = time.perf_counter() - t0
        gc.collect()
        rss1 = _rss_bytes()
        del kept
        gc.collect()
        _, traced = _grow(make())
        gc.collect()
        out[label] = {"rss_mb": (rss1 - rss0) / 1e6, "seconds": secs, **traced}
        log(f"  memory {label:13s} {calls} calls: tracemalloc {traced['tracemalloc_mb']:8.2f} MB, "
            f"RSS {(rss1 - rss0) / 1e6:8.2f} MB")
    return out


# -- the reference-like CPU stage ---------------------------------------------------------
def bench_reference(quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """A CPU stage of ~5 ms, called plain and instrumented in alternation, timed from outside."""
    target_s, calls = (0.002, 40) if quick else (0.005, 400)  # 400 pairs: 95 % CI of the median about +-0.3 %
    loops = calibrate_spin(target_s)

    def core_logic() -> int:
        return _spin(loops)

    rec = new_recorder()
    staged = wiredprof.stage("core_logic", pipeline="reference")(core_logic)
    clock = time.perf_counter
    # Per pair k: plain outer time, instrumented outer time, and what wiredprof recorded for
    # that call (None when the call-tree sampler took it: it is left out of the timings).
    plains, instr, inner = [], [], []
    core_logic()
    set_current_recorder(rec)
    staged()  # creates the stage's accumulator
    set_current_recorder(None)
    acc = rec.stages[("reference", "core_logic")]
    calls0, total0 = acc.calls, acc.total
    for k in range(calls):
        order = (False, True) if k % 2 == 0 else (True, False)
        for instrumented in order:
            if instrumented:
                before_total, before_sampled = acc.total, acc.sampled
                set_current_recorder(rec)
                t0 = clock()
                staged()
                dt = clock() - t0
                set_current_recorder(None)
                instr.append(dt)
                inner.append(acc.total - before_total if acc.sampled == before_sampled else None)
            else:
                t0 = clock()
                core_logic()
                plains.append(clock() - t0)
    pairs = [(i - p) / p for p, i in zip(plains, instr)]
    reported = [(w - p) / p for p, w in zip(plains, inner) if w is not None]
    wrapper = [o - w for o, w in zip(instr, inner) if w is not None]
    recorded_outer = [o for o, w in zip(instr, inner) if w is not None]
    plain_mean = statistics.fmean(plains)
    wp_mean = (acc.total - total0) / (acc.calls - calls0)
    out = {
        "calls": calls,
        "stage_ms": statistics.median(plains) * 1e3,
        "paired_diff_pct": statistics.median(pairs) * 100,
        "paired_diff_pct_p25": quantile(pairs, 0.25) * 100,
        "paired_diff_pct_p75": quantile(pairs, 0.75) * 100,
        # What wiredprof recorded for a call against the plain call next to it.
        "reported_vs_plain_pct": statistics.median(reported) * 100,
        "reported_vs_plain_pct_p25": quantile(reported, 0.25) * 100,
        "reported_vs_plain_pct_p75": quantile(reported, 0.75) * 100,
        "paired_diff_pct_ci95": [v * 100 for v in median_ci95(pairs)],
        "reported_vs_plain_pct_ci95": [v * 100 for v in median_ci95(reported)],
        "plain_mean_ms": plain_mean * 1e3,
        "instrumented_mean_ms": statistics.fmean(instr) * 1e3,
        "wiredprof_mean_ms": wp_mean * 1e3,
        "wiredprof_calls": acc.calls - calls0,
        "wiredprof_sampled_calls": acc.sampled,
        # Means move with every hiccup of a shared machine; the paired medians above do not.
        "wiredprof_vs_plain_pct": (wp_mean / plain_mean - 1) * 100,
        "wiredprof_vs_outer_pct": (wp_mean / statistics.fmean(recorded_outer) - 1) * 100 if recorded_outer else 0.0,
        # Outer clock minus what wiredprof recorded, per call: the instrumentation around the call.
        "outer_minus_recorded_us": statistics.median(wrapper) * 1e6 if wrapper else 0.0,
    }
    log(f"  reference {calls} calls of {out['stage_ms']:.2f} ms: outer paired {out['paired_diff_pct']:+.3f} %, "
        f"recorded vs plain {out['reported_vs_plain_pct']:+.3f} %, means {out['wiredprof_vs_plain_pct']:+.3f} %, "
        f"outer - recorded {out['outer_minus_recorded_us']:.2f} us ({acc.sampled} sampled)")
    return out


# -- machine and report -----------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    return _machine_info(("pyinstrument", "yappi", "ddsketch", "wiredflow"))


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    wl = result["per_call"]["workloads"]
    # Judged where a stage call's cost can be resolved: next to a 1 ms stage, 2 us is 0.2 %,
    # well inside the spread of paired stretches on a shared machine (shown in the table).
    # Judged in the calling thread's CPU time: what the instrumentation costs the flow,
    # whatever share of a core other processes leave it (wall time is shown beside it).
    worst_name = max(("trivial", "deep"), key=lambda w: wl[w]["wiredprof"]["added_cpu_us"])
    worst = wl[worst_name]["wiredprof"]["added_cpu_us"]
    worst_wall = wl[worst_name]["wiredprof"]["added_us"]
    cpu = wl["cpu_1ms"]["wiredprof"]
    mem = result["memory"]["recorder"]
    mem_mb = max(mem["tracemalloc_mb"], mem["rss_mb"])
    calls = result["memory"]["calls"]
    ref = result["reference"]
    timing = max(abs(ref["paired_diff_pct"]), abs(ref["reported_vs_plain_pct"]))
    tp = result["throughput"]["pipelines"]
    largest = max(tp, key=int)
    throughput = [{
        "name": f"throughput of a {largest}-pipeline flow, profiled vs unprofiled",
        "target": f">= {TARGET_THROUGHPUT_PCT:g} %" + ("" if largest == "100" else " (at 100 pipelines)"),
        "measured": f"{tp[largest]['ratio_pct']:.1f} % ("
                    + ", ".join(f"{n}: {row['ratio_pct']:.1f} %" for n, row in tp.items()) + ")",
        "met": tp[largest]["ratio_pct"] >= TARGET_THROUGHPUT_PCT,
    }]
    return [
        {
            "name": "per stage call, including thread CPU time",
            "target": f"<= {TARGET_PER_CALL_US:g} us",
            "measured": f"{worst:.2f} us thread CPU (worst of trivial and deep: `{worst_name}`; wall "
                        f"{worst_wall:.2f} us); next to the 1 ms stage {cpu['added_cpu_us']:.1f} us CPU "
                        f"[{cpu['added_cpu_us_p25']:.1f}..{cpu['added_cpu_us_p75']:.1f}]",
            "met": worst <= TARGET_PER_CALL_US,
        },
        {
            "name": f"memory growth after {calls:,} stage calls",
            "target": f"< {TARGET_MEMORY_MB:g} MB" + (" (per 10^6 calls)" if calls != 1_000_000 else ""),
            "measured": f"{mem_mb:.2f} MB (larger of tracemalloc and RSS)",
            "met": mem_mb * 1_000_000 / calls < TARGET_MEMORY_MB if calls < 1_000_000 else mem_mb < TARGET_MEMORY_MB,
        },
        {
            "name": "reference-like CPU stage timing vs uninstrumented",
            "target": f"within {TARGET_TIMING_PCT:g} %",
            "measured": f"{timing:.3f} % (larger of the two paired medians; 95 % CIs "
                        f"{ref['paired_diff_pct_ci95'][0]:+.2f}..{ref['paired_diff_pct_ci95'][1]:+.2f} and "
                        f"{ref['reported_vs_plain_pct_ci95'][0]:+.2f}..{ref['reported_vs_plain_pct_ci95'][1]:+.2f} %)",
            "met": timing <= TARGET_TIMING_PCT,
        },
    ] + throughput


def reading(result: dict[str, Any]) -> list[str]:
    """A few sentences on what the numbers of this run say (every number from this run)."""
    wl = result["per_call"]["workloads"]
    wp = {w: wl[w]["wiredprof"] for w in wl}
    b = result["breakdown_ns"]
    cw = result["cold_warm"]
    mem = result["memory"]
    ref = result["reference"]
    hooks = [t for t in ("cProfile", "yappi", "pyinstrument") if t in wl["cpu_1ms"]]
    lo = min((wl["cpu_1ms"][t]["slowdown_cpu_pct"] for t in hooks), default=0.0)
    hi = max((wl["cpu_1ms"][t]["slowdown_cpu_pct"] for t in hooks), default=0.0)
    clocks = b["4 clock reads (2 perf_counter, 2 thread_time)"]
    tp = result["throughput"]["pipelines"]
    lines = [
        f"- A stage call through `@wiredprof.stage` with a live recorder adds {wp['trivial']['added_cpu_us']:.2f} us "
        f"of thread CPU when the same trivial call repeats, {wp['deep']['added_cpu_us']:.2f} us around a chain of "
        f"{DEEP_DEPTH} calls, and {wp['cpu_1ms']['added_cpu_us']:.1f} us next to a 1 ms CPU stage "
        f"({wp['cpu_1ms']['slowdown_cpu_pct']:.2f} % of it).",
        f"- Of the hot call, reading both clocks at both ends would take {clocks:.0f} ns: the wall clock is read at "
        f"both ends of every call, the thread CPU clock (a system call), after a stage's first {CPU_READ_EVERY} "
        f"calls on a thread, on one call in {CPU_READ_EVERY} of a stage "
        f"using less than {CPU_EVERY_CALL_S * 1e3:g} ms of CPU a call (the others get the stage's measured CPU share), "
        "on every call of others; no lock is taken (each thread "
        "writes its own shard of a stage's totals) and the p95 histogram is updated in batches, "
        f"{b['fold of a batch of spans, per span']:.0f} ns a span. Counted cumulatively, `Recorder.call` (the whole "
        f"hot path) takes {b['Recorder.call']:.0f} ns, `timed_call` around it {b['timed_call']:.0f} ns, the "
        f"decorator (adds the look-ups of recorder, pipeline and accumulator) {b['@wiredprof.stage call']:.0f} ns; "
        f"`Recorder.enter` + `exit` (the two-call API of context managers) {b['Recorder.enter + exit']:.0f} ns.",
        f"- Next to a real stage the same bookkeeping costs more: right after 1 ms of Python work, "
        f"`Recorder.exit` takes {cw['Recorder.exit']['after_1ms_ns']:.0f} ns instead of "
        f"{cw['Recorder.exit']['again_ns']:.0f}, reading `thread_time` {cw['time.thread_time()']['after_1ms_ns']:.0f} "
        f"instead of {cw['time.thread_time()']['again_ns']:.0f}; most likely what"
        " they touch has left the CPU's caches meanwhile (on a shared machine other processes also run in between)."
        " Hence the larger cost next to the 1 ms stage than on the trivial one.",
        f"- Profile hooks cost per Python call, not per stage call: they slow the 1 ms pure-Python stage by "
        f"{lo:.0f}-{hi:.0f} % and the {DEEP_DEPTH}-call chain by "
        + ", ".join(f"{t} {wl['deep'][t]['added_cpu_us']:.1f} us" for t in hooks)
        + f" (wiredprof {wp['deep']['added_cpu_us']:.1f} us). On a trivial stage cProfile and pyinstrument cost less"
        " than wiredprof: a hook call is cheaper than reading two clocks twice.",
        "- At scale: " + "; ".join(
            f"{n} pipelines completed {row['ratio_pct']:.1f} % of the unprofiled stage calls profiled "
            f"(CPU per call {row['plain_cpu_us_per_call']:.1f} -> {row['profiled_cpu_us_per_call']:.1f} us)"
            for n, row in tp.items()) + ".",
        f"- Memory: {mem['calls']:,} calls leave {mem['recorder']['tracemalloc_mb']:.2f} MB (tracemalloc) in the "
        "recorder (counters, a histogram and a window of the last spans per run: bounded by the number of stages); "
        f"keeping every span would take "
        f"{mem['span_tuples']['tracemalloc_mb']:.0f} MB as tuples, {mem['span_objects']['tracemalloc_mb']:.0f} MB as "
        "objects.",
        f"- The reference-like stage: instrumented calls took {ref['paired_diff_pct']:+.2f} % (median of pairs) "
        f"against plain ones, and wiredprof recorded {ref['reported_vs_plain_pct']:+.2f} % against the plain call "
        f"beside each; the outer clock saw {ref['outer_minus_recorded_us']:.1f} us more per call than wiredprof "
        "recorded (the instrumentation outside its own clock readings).",
    ]
    return lines


def _fmt(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}"


def render_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# wiredprof instrumentation overhead",
        "",
        "Written by `benchmarks/overhead.py` (do not edit by hand: run it again).",
        f"Mode: **{result['mode']}**. Measured {m['date_utc']}.",
        "",
        "## Targets (issue 3, item 9; issue 12)",
        "",
        markdown_table(["target", "required", "measured", "met"],
                       [[t["name"], t["target"], t["measured"], "yes" if t["met"] else "**no**"]
                        for t in result["targets"]]),
    ]
    lines += ["", "## Reading the numbers", ""] + reading(result)
    lines += [
        "",
        "## Cost per stage call",
        "",
        "Median of paired differences (instrumented stretch minus the adjacent plain stretch, order",
        "alternating), per stage call; p25..p75 of the pairs in brackets. `plain` is the uninstrumented",
        "call. Slowdown is the median of the paired ratios. Measured twice over the same stretches: in",
        "the calling thread's CPU time (what the instrumentation costs; other processes on the shared",
        "machine do not count) and in wall-clock time (what a user waits; on a busy machine this is the",
        "CPU cost divided by the share of a core the process gets).",
        "",
    ]
    wl = result["per_call"]["workloads"]
    tools = list(next(iter(wl.values())).keys())
    for suffix, title in (("_cpu", "Thread CPU time"), ("", "Wall-clock time")):
        headers = ["tool", *[f"{w}: added us/call" for w in wl], *[f"{w}: slowdown %" for w in wl]]
        rows = [["plain (uninstrumented), us/call",
                 *[_fmt(statistics.median([wl[w][t][f"plain{suffix}_us"] for t in tools]), 3) for w in wl],
                 *[""] * len(wl)]]
        a, sl = f"added{suffix}_us", f"slowdown{suffix}_pct"
        for t in tools:
            rows.append([t,
                         *[f"{_fmt(wl[w][t][a], 3)} [{_fmt(wl[w][t][a + '_p25'], 3)}..{_fmt(wl[w][t][a + '_p75'], 3)}]"
                           for w in wl],
                         *[f"{_fmt(wl[w][t][sl], 1)} [{_fmt(wl[w][t][sl + '_p25'], 1)}..{_fmt(wl[w][t][sl + '_p75'], 1)}]"
                           for w in wl]])
        lines += [f"### {title}", "", markdown_table(headers, rows, right=range(1, len(headers))), ""]
    lines += [
        f"- `{w}`: {wl[w][tools[0]]['calls_per_stretch']} calls per stretch, {wl[w][tools[0]]['pairs']} pairs"
        for w in wl
    ]
    lines += [
        f"- `cpu_1ms` is a pure-Python loop of {result['per_call']['spin_1ms_loops']} iterations; `deep` is a "
        f"chain of {DEEP_DEPTH} nested Python calls (one stage call).",
        "- Tools: " + "; ".join(f"`{t['name']}`: {t['note']}" for t in result["tools"]) + ".",
    ]
    if result["skipped"]:
        lines.append("- Skipped: " + "; ".join(result["skipped"]) + ".")
    cc = result["clocks_ns"]
    lines += [
        "",
        "Clocks a stage call reads twice each (ns per read): "
        + ", ".join(f"`{k}` {v:.0f}" for k, v in cc.items()) + ".",
        "",
        "Where the time of one stage call goes, hot (the same call repeated; each layer includes the",
        "ones listed above it that it uses; ns per call, best of several repeats):",
        "",
        markdown_table(["layer", "ns per call"], [[k, f"{v:.0f}"] for k, v in result["breakdown_ns"].items()],
                       right=[1]),
        "",
        "Steps of the bookkeeping timed right after 1 ms of pure-Python work (as at the end of a real",
        f"stage call) and then once more at once (median of {result['cold_warm']['tries']} tries, ns; the timer's own",
        "read of `perf_counter` is included in each):",
        "",
        markdown_table(["what", "right after 1 ms of other work", "again at once"],
                       [[k, f"{v['after_1ms_ns']:.0f}", f"{v['again_ns']:.0f}"]
                        for k, v in result["cold_warm"].items() if k != "tries"], right=[1, 2]),
        "",
        "## 1 ms CPU stage: slowdown",
        "",
        markdown_table(["tool", "slowdown, thread CPU", "slowdown, wall clock"],
                       [[t, f"{_fmt(wl['cpu_1ms'][t]['slowdown_cpu_pct'], 2)} %",
                         f"{_fmt(wl['cpu_1ms'][t]['slowdown_pct'], 2)} %"] for t in tools], right=[1, 2]),
    ]
    mem = result["memory"]
    lines += [
        "",
        f"## Memory after {mem['calls']:,} stage calls",
        "",
        "Growth left allocated after the calls (tracemalloc: Python allocations, measured in a second run;",
        "RSS: resident set, measured without tracemalloc). The recorder keeps counters, a DDSketch and a",
        "bounded timeline window; the alternatives keep every span, as a profiler with a span list would.",
        "",
        markdown_table(["what", "tracemalloc MB", "tracemalloc peak MB", "RSS MB", "seconds"], [
            [title, _fmt(mem[label]["tracemalloc_mb"]), _fmt(mem[label]["tracemalloc_peak_mb"]),
             _fmt(mem[label]["rss_mb"]), _fmt(mem[label]["seconds"], 1)]
            for label, title in (("recorder", "wiredprof recorder (`@wiredprof.stage` calls)"),
                                 ("span_tuples", "list of span tuples (8 fields)"),
                                 ("span_objects", "list of `TimelineSpan` objects"))], right=[1, 2, 3, 4]),
    ]
    ref = result["reference"]
    lines += [
        "",
        "## Reference-like CPU stage",
        "",
        f"{ref['calls']} calls of a {ref['stage_ms']:.2f} ms pure-Python stage (calibrated at start; slower when the machine",
        "is busy), each instrumented call paired with a",
        "plain call (order alternating), all timed by an outer `perf_counter`; the recorder set up as",
        "`wiredprof analyze` sets it up (call-tree sampler on: its sampled calls run under pyinstrument",
        "and are left out of wiredprof's statistics). The target is judged on the two paired medians;",
        "means are shown too, but on a shared machine they move with every hiccup.",
        "",
        markdown_table(["measure", "value"], [
            ["median paired difference, instrumented vs plain (outer clock)",
             f"{ref['paired_diff_pct']:+.3f} % "
             f"[{ref['paired_diff_pct_p25']:+.3f}..{ref['paired_diff_pct_p75']:+.3f}]; 95 % CI of the median "
             f"{ref['paired_diff_pct_ci95'][0]:+.3f}..{ref['paired_diff_pct_ci95'][1]:+.3f}"],
            ["median paired difference, time wiredprof recorded for the call vs the plain call",
             f"{ref['reported_vs_plain_pct']:+.3f} % "
             f"[{ref['reported_vs_plain_pct_p25']:+.3f}..{ref['reported_vs_plain_pct_p75']:+.3f}]; 95 % CI of the "
             f"median {ref['reported_vs_plain_pct_ci95'][0]:+.3f}..{ref['reported_vs_plain_pct_ci95'][1]:+.3f}"],
            ["plain mean (outer clock)", f"{ref['plain_mean_ms']:.4f} ms"],
            ["instrumented mean (outer clock, all calls)", f"{ref['instrumented_mean_ms']:.4f} ms"],
            [f"wiredprof's reported mean ({ref['wiredprof_calls']} calls; {ref['wiredprof_sampled_calls']} sampled "
             "calls left out)", f"{ref['wiredprof_mean_ms']:.4f} ms"],
            ["wiredprof's mean vs plain mean", f"{ref['wiredprof_vs_plain_pct']:+.3f} %"],
            ["wiredprof's mean vs outer clock on the same calls", f"{ref['wiredprof_vs_outer_pct']:+.4f} %"],
            ["outer clock minus recorded time, median per call", f"{ref['outer_minus_recorded_us']:.2f} us"],
        ], right=[1]),
        "",
        *_throughput.markdown(result),
        "",
        "## Machine",
        "",
        f"- CPUs (`nproc`): {m['nproc']}; CPU model: {m['cpu_model']}",
        f"- load average (1, 5, 15 min) at start: {m['loadavg_start']}; at end: {m.get('loadavg_end', '?')} "
        "(the machine is shared)",
        f"- Python: {m['python']} on {m['platform']}",
        f"- wiredprof {m['wiredprof']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "",
        "## Reproduce",
        "",
        "```",
        result["command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def command_line(argv: list[str]) -> str:
    return "cd " + shlex.quote(str(REPO)) + " && PYTHONPATH=$PWD " + shlex.quote(sys.executable) + \
        " benchmarks/overhead.py" + ("".join(" " + shlex.quote(a) for a in argv))


def run(quick: bool, log: Callable[[str], None], argv: list[str]) -> dict[str, Any]:
    tools, skipped = available_tools()
    log(f"wiredprof overhead benchmark ({'quick' if quick else 'full'}): per-call costs")
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "quick" if quick else "full",
        "command": command_line(argv),
        "machine": machine_info(),
        "tools": [{"name": t.name, "note": t.note} for t in tools],
        "skipped": skipped,
    }
    t0 = time.perf_counter()
    result["clocks_ns"] = clock_costs()
    result["per_call"] = bench_per_call(quick, tools, log)
    result["breakdown_ns"] = breakdown(quick)
    result["cold_warm"] = cold_and_warm(quick, result["per_call"]["spin_1ms_loops"])
    log("memory")
    result["memory"] = bench_memory(quick, log)
    log("reference-like CPU stage")
    result["reference"] = bench_reference(quick, log)
    log("throughput at scale")
    added = result["per_call"]["workloads"]["trivial"]["wiredprof"]["added_cpu_us"]
    result["throughput"] = _throughput.bench_throughput(quick, log, added)
    result["sampler_budget"] = _throughput.bench_sampler_budget(quick, log)
    result["machine"]["loadavg_end"] = loadavg()
    result["targets"] = targets(result)
    result["seconds"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    return quick_json_main(
        argv, prog="benchmarks/overhead.py",
        description="Cost per stage call of wiredprof's instrumentation vs cProfile, yappi, pyinstrument.",
        quick_help="few rounds, 10^5 calls for memory: checks the benchmark runs (seconds)",
        default_report=DEFAULT_REPORT, run=run, render=render_markdown)


if __name__ == "__main__":
    sys.exit(main())
