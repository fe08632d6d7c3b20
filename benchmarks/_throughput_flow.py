"""A high-rate plain-API flow for benchmarks/overhead.py: N pipelines (threads), each 5 stages.

Each stage sleeps about 0.5 ms (a fast database or network call) and does a little Python
work. Every pipeline loops over its chain until its own deadline (`--seconds`), so it runs
the same unprofiled (`python _throughput_flow.py`) and under `wiredprof analyze`. Writes
the number of stage calls completed, and the process's CPU seconds while they ran, to `--out`.

    python benchmarks/_throughput_flow.py --pipelines 20 --seconds 10 --out /tmp/calls.txt
"""
from __future__ import annotations

import argparse
import threading
import time
from collections import deque
from typing import Any, Callable

import wiredprof

STAGES = ("fetch", "parse", "enrich", "store", "notify")
SLEEP_S = 0.0005


def _work(x: int, loops: int = 50) -> int:
    s = 0
    for i in range(loops):  # a little CPU: a few microseconds
        s += (x + i) * i
    return s


def _floor(fn: Callable[[int], int], number: int, spans: deque[tuple[int, float, float]]) -> Callable[..., Any]:
    """The least any per-call timer must do (the benchmark's floor): read the wall clock
    twice and keep one tuple, nothing per cycle, no thread state, no CPU clock."""
    clock, keep = time.perf_counter, spans.append

    def call(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        result = fn(*args, **kwargs)
        keep((number, start, clock()))
        return result

    return call


def _stage(name: str, extra_loops: int, floor: deque[tuple[int, float, float]] | None = None) -> object:
    def call(x: int) -> int:
        time.sleep(SLEEP_S)
        return _work(x, 50 + extra_loops)

    if floor is not None:
        return _floor(call, STAGES.index(name) + 1, floor)
    return wiredprof.stage(name)(call)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--extra-loops", type=int, default=0,
                        help="more Python work per stage call (the benchmark's control: any per-call cost)")
    parser.add_argument("--floor", action="store_true",
                        help="no wiredprof: each stage call timed by the least a timer can do (the benchmark's floor)")
    args = parser.parse_args()
    floor: deque[tuple[int, float, float]] | None = deque(maxlen=5000) if args.floor else None
    chain = [_stage(name, args.extra_loops, floor) for name in STAGES]
    counts = [0] * args.pipelines
    start = threading.Barrier(args.pipelines + 1)

    def pipeline(i: int) -> None:
        name = f"pipeline_{i + 1}"
        calls = 0
        start.wait()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            with wiredprof.pipeline(name):
                x = i
                for stage in chain:
                    x = stage(x)  # type: ignore[operator]
                    calls += 1
        counts[i] = calls

    threads = [threading.Thread(target=pipeline, args=(i,), name=f"pipeline_{i + 1}") for i in range(args.pipelines)]
    for t in threads:
        t.start()
    start.wait()
    cpu0 = time.process_time()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu0  # the process's CPU while the pipelines ran (any profiler's included)
    with open(args.out, "w") as f:
        f.write(f"{sum(counts)} {cpu!r}\n")


if __name__ == "__main__":
    main()
