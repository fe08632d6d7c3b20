"""The unit of Python speed wiredprof compares hosts in: one fixed pure-Python loop.

`hosts check` times it here and on the host (remote/probe.py), and while a flow runs each of
its processes times short rounds of it while stages are in progress (profiling/wakeprobe.py):
the planner sets the host's time per iteration against this machine's CPU per iteration as
the stage ran. Stdlib only and stateless: it travels to a host by value.
"""
from __future__ import annotations

__all__ = ["reference_loop"]


def reference_loop(n: int) -> int:
    """`n` iterations of integer Python work, each costing the same (its numbers stay small)."""
    total = 0
    for i in range(n):
        j = i & 0x3FFF
        total += (j * j) % 7 ^ (j >> 3)
    return total
