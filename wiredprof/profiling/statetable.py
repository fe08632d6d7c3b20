"""The table the recorder shares with the thread-state sampler process (stdlib only).

One row per thread of the flow (any process of it), in a shared memory file:
`tid`, the number of the stage it is in now (0: none, `SAMPLED`: a call run under the
call-tree sampler, kept out of every figure), `since`: when it last changed (the
recorder's wall clock, `perf_counter`, which is CLOCK_MONOTONIC on Linux like the
sampler's `time.monotonic`), and `prev`: the stage it was in before that change. With
`since` and `prev` the sampler splits a tick between the stage that ended and the one that
began in it, instead of charging the whole tick to whichever it sees at the tick.

Rows are written by their own thread only, without a lock; the sampler reads them
between writes, so a row may be torn for one tick (an old `since` with a new stage).
"""
from __future__ import annotations

import mmap

__all__ = ["SLOTS", "ROW", "STAGE", "SINCE", "PREV", "SAMPLED", "SIZE", "views", "claim_row"]

SLOTS = 512
ROW = 4  # int64 words per row: tid, stage, since (a double), prev
STAGE, SINCE, PREV = 1, 2, 3
SAMPLED = -1
SIZE = SLOTS * ROW * 8
_PROBES = 32


def views(mm: mmap.mmap) -> tuple[memoryview[int], memoryview[float]]:
    """The table as int64 words and the same memory as doubles (for `since`)."""
    return memoryview(mm).cast("q"), memoryview(mm).cast("d")


def claim_row(table: memoryview, tid: int) -> int:
    """The first word of `tid`'s row (its own from before, or a free one); -1 when the table is full."""
    for probe in range(_PROBES):
        i = (tid + probe) % SLOTS * ROW
        if table[i] in (0, tid):
            table[i] = tid
            return i
    return -1
