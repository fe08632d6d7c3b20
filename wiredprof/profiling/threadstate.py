"""Per thread of the flow: its stage calls in progress, its state-table row, its spans not folded yet.

Each thread reads its one `ThreadState` once per stage call (recorder.py) and writes only
its own; after a fork, the one thread that lives on in the child gets its new native id and
sends its spans to the parent from then on.
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from wiredprof.profiling.accumulators import CycleShard, Span, StageAccumulator, StageShard, ThreadInfo

__all__ = ["Frame", "ThreadState", "ThreadLocal", "stages_in_progress"]

# A stage call in progress: [its shard, children's wall, children's cpu, what its row in the
# state table shows]. A list costs a third of a small class's __init__.
Frame = list[Any]


class ThreadState:
    """One thread's calls in progress, its state-table row and its spans not folded yet."""

    __slots__ = ("stack", "tid", "pending", "sampled_cycle", "table", "row", "current", "info", "shards",
                 "fold_here", "sampling", "fast", "cycles", "by_number", "__weakref__")

    def __init__(self, fold_here: bool) -> None:
        self.stack: list[Frame] = []
        self.tid = threading.get_native_id()
        self.pending: list[Span] = []
        self.sampled_cycle = False
        self.table: memoryview[int] | None = None  # the state table `row` was claimed in
        self.row = -1
        self.current = 0  # the stage number this thread's row shows now
        self.info: ThreadInfo | None = None  # what this thread is, once registered
        self.shards: dict[StageAccumulator, StageShard] = {}
        self.by_number: dict[int, StageShard] = {}  # the same shards by their stage's number
        self.cycles: dict[str, CycleShard] = {}  # pipeline -> this thread's shard of its cycles
        self.fold_here = fold_here  # False in a forked child: its spans go to the parent
        self.sampling = 0  # sampled calls in progress: calls under a profiler are never timed
        self.fast = fold_here  # fold_here and not sampling: the common case, one check per call
        _thread_states.add(self)


class ThreadLocal(threading.local):
    """Per thread: one `ThreadState` (a threading.local attribute costs 5x a slot: read it once)."""

    def __init__(self, owner_pid: int, pending_lists: list[list[Span]],
                 owners: list[tuple[weakref.ref[ThreadState], list[Span]]] | None = None) -> None:
        self.ts = ThreadState(os.getpid() == owner_pid)
        pending_lists.append(self.ts.pending)  # the recorder reads every thread's spans not folded yet
        if owners is not None:  # and folds those of threads that ended (their state goes with them)
            owners.append((weakref.ref(self.ts), self.ts.pending))

    @property
    def tid(self) -> int:
        return self.ts.tid


_thread_states: weakref.WeakSet[ThreadState] = weakref.WeakSet()


def stages_in_progress() -> list[int]:
    """The numbers of the stage calls in progress on the threads of this process (any thread may ask)."""
    out = []
    for state in list(_thread_states):
        for frame in list(state.stack):
            out.append(frame[0].number)
    return out


def _thread_states_after_fork() -> None:
    """In a forked child: the thread that forked has a new native id, and its spans go to the parent."""
    tid = threading.get_native_id()
    for state in list(_thread_states):
        state.tid = tid  # only the forking thread lives on in the child
        state.fold_here = state.fast = False
        state.pending.clear()  # the parent's, already counted there
        state.table = None


os.register_at_fork(after_in_child=_thread_states_after_fork)
