"""The unit of Python speed wiredprof compares hosts in: one fixed pure-Python loop.

`hosts check` times it here and on the host (remote/probe.py), and while a flow runs each of
its processes times short rounds of it while stages are in progress (profiling/wakeprobe.py):
the planner sets the host's time per iteration against this machine's CPU per iteration as
the stage ran. Stdlib only and stateless: it travels to a host by value.
"""
from __future__ import annotations

import time

__all__ = ["reference_loop", "cpu_loop_times"]


def reference_loop(n: int) -> int:
    """`n` iterations of integer Python work, each costing the same (its numbers stay small)."""
    total = 0
    for i in range(n):
        j = i & 0x3FFF
        total += (j * j) % 7 ^ (j >> 3)
    return total


def cpu_loop_times(n: int, rounds: int = 1) -> list[tuple[float, float]]:
    """(wall, thread CPU) seconds of each of `rounds` runs of `reference_loop(n)`."""
    out = []
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.thread_time()
        reference_loop(n)
        out.append((time.perf_counter() - w0, time.thread_time() - c0))
    return out
