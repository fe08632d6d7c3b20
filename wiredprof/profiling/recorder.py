"""The sink of every stage call and pipeline cycle of a run: per-thread call stacks, no lock per call.

Each thread keeps its stage calls in progress (stages nest: an MQTT connector calls its
storage; a call's self time leaves its children's out), its row in the state table the
sampler process reads (statetable.py), and a list of finished spans that it folds into
its own shards of the stages' accumulators every `FOLD_EVERY` calls (accumulators.py).
In a child process of the flow (forked by wiredflow's process mode, or spawned and joined
to the run by profiling/child.py) records go to the parent instead (childlink.py), so the
parent holds the only aggregate.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from itertools import groupby
from operator import itemgetter
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar

from wiredprof.profile import CallTree, ErrorInfo, TimelineSpan
from wiredprof.profiling.accumulators import (
    CycleAccumulator,
    CycleShard,
    Span,
    StageAccumulator,
    StageShard,
    ThreadInfo,
)
from wiredprof.profiling.childlink import (
    CallbackRecord,
    CallTreeRecord,
    ChildLink,
    CycleRecord,
    EventRecord,
    NumberRecord,
    Record,
    SpanRecord,
    ThreadsRecord,
    TransferRecord,
    WakeRecord,
)
from wiredprof.profiling.statetable import PREV, ROW, SAMPLED, SINCE, SLOTS, STAGE, claim_row
from wiredprof.profiling.threadstate import Frame, ThreadLocal, ThreadState, stages_in_progress
from wiredprof.profiling.wakeprobe import WakeProbe, WakeStats

if TYPE_CHECKING:  # the sampler's types only: the plain API does not import pyinstrument
    from pyinstrument import Profiler
    from pyinstrument.session import Session

__all__ = [
    "StageAccumulator",
    "CycleAccumulator",
    "ThreadInfo",
    "Recorder",
    "CallTrees",
    "error_info",
    "current_recorder",
    "set_current_recorder",
    "FOLD_EVERY",
]

log = logging.getLogger(__name__)
_V = TypeVar("_V")  # a per-stage value a child reports (see _renumbered)

_TIMELINE_SIZE = 5000
# Spans a thread keeps before folding them into its shards: large enough that the fold's
# per-batch costs vanish, small enough that 100 threads' lists stay a few MB.
FOLD_EVERY = 256
_OFFLOAD_EVENTS = 1000  # offload events kept with their time (timeline marks)


def error_info(exc: BaseException) -> ErrorInfo:
    """The exception as plain data, with its original traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(type=type(exc).__qualname__, message=str(exc), traceback=tb)


class CallTrees(Protocol):
    """What the recorder and the instrumentation need of a call-tree sampler (calltree.py)."""

    def wants(self, acc: StageAccumulator, ordinal: int) -> bool: ...

    def start(self) -> Profiler: ...

    def stop(self, acc: StageAccumulator, profiler: Profiler, ordinal: int) -> Session | None: ...

    def add_json(self, pipeline: str, stage: str, session_json: dict[str, Any], ordinal: int) -> None: ...

    def trees(self) -> list[CallTree]: ...


_NO_TIMES: memoryview[float] = memoryview(bytearray(8)).cast("d")
_NUMBER, _WALL, _CPU, _SAMPLED_FLAG = itemgetter(0), itemgetter(2), itemgetter(3), itemgetter(5)  # of a Span
_NO_TREES_RECHECK = 1024  # calls before a stage looks again whether a call-tree sampler came


def _fold_by_stage(batch: list[Span], shard_of: Callable[[int], StageShard | None]) -> None:
    """Fold timed spans into the shard of each one's stage: sorted and grouped in C, not span by span."""
    batch.sort(key=_NUMBER)
    for number, spans in groupby(batch, _NUMBER):
        shard = shard_of(number)
        if shard is not None:
            group = list(spans)
            shard.fold(list(map(_WALL, group)), map(_CPU, group))


def _thread_names_alive() -> dict[int, str]:
    """The threads alive in this process, by native id: their names."""
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


class Recorder:
    """The sink of every stage call and cycle in this process tree."""

    def __init__(
        self,
        host: str = "local",
        timeline_size: int = _TIMELINE_SIZE,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.host = host
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.t0 = clock()
        # Offload events (retry, fallback, timeout, link loss) with their time, for timeline marks.
        self.offload_events: deque[tuple[float, str, str, str, str]] = deque(maxlen=_OFFLOAD_EVENTS)
        self.owner_pid = os.getpid()
        self.stages: dict[tuple[str, str], StageAccumulator] = {}
        self.cycles: dict[str, CycleAccumulator] = {}
        # Folded spans, oldest first; `timeline` adds the ones threads still hold.
        self._window: deque[Span] = deque(maxlen=timeline_size)
        self._pending_lists: list[list[Span]] = []
        self.threads: dict[int, ThreadInfo] = {}  # native thread id -> info
        self.mode = "plain"
        self.killed: list[ErrorInfo] = []  # pipeline processes a signal killed
        self.stage_hosts: dict[str, str] = {}  # "PIPELINE.STAGE" -> host it runs on (offloaded)
        self._call_trees: CallTrees | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()
        # Each thread's state (weakly: it goes when its thread ends) with its spans not folded yet.
        self._owners: list[tuple[weakref.ref[ThreadState], list[Span]]] = []
        self._local = ThreadLocal(self.owner_pid, self._pending_lists, self._owners)
        self.link = ChildLink(self.apply, clock)
        self._numbers: dict[int, StageAccumulator] = {}
        self._state_table: memoryview[int] | None = None  # int64 words (see statetable.py)
        self._state_times: memoryview[float] = _NO_TIMES  # the same memory as doubles
        self.child_threads: dict[tuple[int, int], ThreadInfo] = {}
        # Names of threads of the flow's processes by native id, as seen alive (once a thread
        # ends its name is gone, and the sampler's figures are folded at the end): a competitor
        # is named, and wiredprof's own threads (OWN_THREAD_PREFIX) are nobody's competitors.
        self.thread_names: dict[int, str] = {}
        # Each process's wake-up probe (wakeprobe.py), by pid; a child's own probe runs in `_wake`.
        self.wake_by_pid: dict[int, WakeStats] = {}
        self._wake: WakeProbe | None = None
        # Handlers for record types of other parts, by the record's class.
        self.extra_handlers: dict[Any, Callable[[Any], None]] = {}
        self._dispatch: dict[type, Callable[[Any], None]] = {
            SpanRecord: self._apply_span,
            CycleRecord: self._apply_cycle,
            TransferRecord: self._apply_transfer,
            EventRecord: self._apply_event,
            ThreadsRecord: self._apply_threads,
            NumberRecord: self._apply_number,
            CallTreeRecord: self._apply_calltree,
            CallbackRecord: self._apply_callback,
            WakeRecord: self._apply_wake,
        }

    @property
    def call_trees(self) -> CallTrees | None:
        """The call-tree sampler the stage calls ask (None: no call trees)."""
        return self._call_trees

    @call_trees.setter
    def call_trees(self, trees: CallTrees | None) -> None:
        self._call_trees = trees
        for acc in list(self.stages.values()):  # stages that stopped asking ask again at their next call
            acc.next_check = min(acc.next_check, acc.seen + 1)

    # -- reading ---------------------------------------------------------------------
    @property
    def in_child(self) -> bool:
        """True in a child process of the run (forked, or spawned and connected to the parent)."""
        return os.getpid() != self.owner_pid

    def _spans(self) -> list[Span]:
        spans = list(self._window)
        for pending in list(self._pending_lists):
            spans.extend(list(pending))
        return spans

    @property
    def timeline(self) -> deque[TimelineSpan]:
        """The bounded window of recent spans, oldest first (a snapshot)."""
        maxlen = self._window.maxlen
        raw = self._spans()
        if maxlen is not None:
            raw = raw[-maxlen:] if maxlen else []
        t0 = self.t0
        return deque(
            (TimelineSpan(a.pipeline, a.stage, a.host, s[1] - t0, s[2], s[3], s[4], s[5])
             for s in raw if (a := self._numbers.get(s[0])) is not None),
            maxlen=maxlen,
        )

    @property
    def timeline_seen(self) -> int:
        """Spans recorded so far (the timeline keeps the last of them)."""
        return sum(a.calls + a.sampled for a in list(self.stages.values()))

    # -- registration ------------------------------------------------------------
    def stage(
        self, pipeline: str, stage: str, kind: str = "", index: int = 0, function: str = "", host: str | None = None
    ) -> StageAccumulator:
        """The accumulator of `pipeline.stage`, created on first use."""
        key = (pipeline, stage)
        acc = self.stages.get(key)
        if acc is None:
            with self._lock:
                acc = self.stages.get(key)
                if acc is None:
                    where = self.stage_hosts.get(f"{pipeline}.{stage}") or host or self.host
                    acc = StageAccumulator(pipeline, stage, kind or stage, index, function, where,
                                           self._pending_lists)
                    self.stages[key] = acc
                    self._number(acc)
        return acc

    def _number(self, acc: StageAccumulator) -> None:
        n = len(self._numbers) + 1
        if self.in_child:
            # Stages first seen in a child get numbers of their own and the parent learns them.
            n |= os.getpid() << 24
            self.link.queue(NumberRecord(n, acc.pipeline, acc.stage, acc.kind, acc.index, acc.function))
        acc.number = n
        self._numbers[n] = acc

    def accumulator_by_number(self, number: int) -> StageAccumulator | None:
        return self._numbers.get(number)

    def threads_by_tid(self) -> dict[int, ThreadInfo]:
        """Every thread the run knew, by native id (child processes' included)."""
        names = {**self.thread_names, **_thread_names_alive()}
        out = {tid: ThreadInfo(name, "", "other") for tid, name in names.items()}
        out.update({tid: info for (_pid, tid), info in self.child_threads.items()})
        out.update(self.threads)
        return out

    def attach_state_table(self, table: memoryview[int] | None, times: memoryview[float] | None = None) -> None:
        """Share the state table with the thread-state sampler (None: stop writing to it).

        Attached once per run, before any stage call: rows claimed by threads stay theirs.
        """
        if table is not None and times is None:
            times = table.cast("B").cast("d")
        self._state_table, self._state_times = table, times if times is not None else _NO_TIMES

    def _row(self, ts: ThreadState, table: memoryview[int] | None) -> int:
        """This thread's row in the state table: claimed once per thread, by its native id (-1: none)."""
        ts.row = claim_row(table, ts.tid) if table is not None else -1
        ts.table = table
        return ts.row

    def note_thread_names(self) -> None:
        """Remember the names of the threads alive in this process now (they go when the threads end)."""
        self.thread_names.update(_thread_names_alive())

    def register_thread(self, pipeline: str, role: str, name: str | None = None) -> None:
        """Say what the calling thread is (its CPU outside stages is framework time)."""
        ts = self._local.ts
        info = ts.info
        table = self._state_table
        if info is not None and info.pipeline == pipeline and info.role == role and (table is None or ts.table is table):
            return  # every cycle of a pipeline says so: the common case first
        tid = threading.get_native_id()
        info = self.threads.get(tid)
        if info is None or info.role != role or info.pipeline != pipeline:
            before = info.stage_cpu if info is not None else 0.0
            base = info.cpu_base if info is not None else time.thread_time()
            info = self.threads[tid] = ThreadInfo(name or threading.current_thread().name, pipeline, role, before,
                                                  cpu_base=base)
        ts.info = info
        if table is not None and ts.table is not table:
            self._row(ts, table)  # the sampler learns this process before its first stage call

    def begin_cycle(self, pipeline: str) -> float:
        """A cycle of `pipeline` begins on this thread (a pipeline thread): its start on the clock."""
        ts = self._local.ts
        info = ts.info
        if info is None or info.pipeline != pipeline or info.role != "pipeline" or ts.table is not self._state_table:
            self.register_thread(pipeline, "pipeline")
        return self.clock()

    def _shard(self, ts: ThreadState, acc: StageAccumulator) -> StageShard:
        """This thread's first call of `acc`: its shard (and, for a thread nobody registered, its info)."""
        shard = StageShard(acc)
        with self._lock:
            acc.shards.append(shard)
        ts.shards[acc] = shard
        ts.by_number[acc.number] = shard
        if ts.info is None and ts.fold_here:
            # Its CPU in stages must be known, or all of it would look like a busy loop outside them.
            ts.info = self.threads[ts.tid] = ThreadInfo(threading.current_thread().name, acc.pipeline, "other",
                                                        cpu_base=time.thread_time())
        return shard

    # -- recording -----------------------------------------------------------------
    def current_stage(self) -> StageAccumulator | None:
        """The innermost stage running on the calling thread, or None."""
        stack = self._local.ts.stack
        return stack[-1][0].acc if stack else None  # type: ignore[no-any-return]

    def enter(self, acc: StageAccumulator, sampled: bool = False) -> tuple[float, float]:
        """Mark the start of a call of `acc` on this thread; returns (wall, cpu) clocks.

        A `sampled` call (run under the call-tree sampler) shows as SAMPLED in the state
        table: the sampler leaves it and its thread's CPU out of every figure.
        """
        ts = self._local.ts
        shard = ts.shards.get(acc)
        if shard is None:
            shard = self._shard(ts, acc)
        if sampled:
            ts.sampling += 1
            ts.fast = False
        mark = SAMPLED if ts.sampling else acc.number
        ts.stack.append([shard, 0.0, 0.0, mark])
        table = self._state_table
        if table is not None:
            row = ts.row if ts.table is table else self._row(ts, table)
            if row >= 0:
                table[row + PREV] = ts.current
                table[row + STAGE] = mark
                ts.current = mark
                # The wall clock first, the CPU clock inside: cpu <= wall for every call.
                start = self.clock()
                cpu = self.cpu_clock()
                self._state_times[row + SINCE] = start
                return start, cpu
        start = self.clock()
        return start, self.cpu_clock()

    def call(self, acc: StageAccumulator, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run `fn(*args, **kwargs)` as one call of `acc` and record it: the hot path of every stage call.

        `enter`, the call and `exit` in one frame. The call-tree sampler is asked only from
        the ordinal it named (`acc.next_check`); a generator result is timed item by item
        (instrument.py has both rare paths). The CPU clock is read on the calls `shard.skip`
        says (see accumulators.CPU_READ_EVERY), in `_call_read`; on the others, the common
        case straight through here, the call's CPU is its wall time at the stage's measured
        CPU share.
        """
        seen = acc.seen = acc.seen + 1
        if seen >= acc.next_check:
            trees = self._call_trees
            if trees is None:
                acc.next_check = seen + _NO_TREES_RECHECK
            elif trees.wants(acc, seen):
                from wiredprof.profiling.instrument import sampled_call  # imported long before: no cost

                return sampled_call(self, acc, seen, fn, args, kwargs)
        ts = self._local.ts
        shard = ts.shards.get(acc)
        if shard is None or not shard.skip or not ts.fast or ts.table is not self._state_table:
            return self._call_read(acc, fn, args, kwargs)
        shard.skip -= 1
        mark = shard.number
        frame: Frame = [shard, 0.0, 0.0, mark]
        stack = ts.stack
        stack.append(frame)
        row = ts.row
        clock = self.clock
        if row >= 0:
            table: memoryview[int] = ts.table  # type: ignore[assignment]  # set with the row
            table[row + PREV] = ts.current
            table[row + STAGE] = mark
            ts.current = mark
            start = clock()
            self._state_times[row + SINCE] = start
        else:
            start = clock()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            # Only exceptions count as stage errors; KeyboardInterrupt and the like are not the stage's.
            self.exit(acc, start, None, exc if isinstance(exc, Exception) else None)
            raise
        end = clock()
        if type(result) is GeneratorType:  # inspect.isgenerator (GeneratorType has no subclasses)
            return self._generator(acc, result)
        stack.pop()
        wall = end - start
        self_wall = wall - frame[1]
        if not self_wall > 0.0:  # max(0.0, x) without the builtin call
            self_wall = 0.0
        self_cpu = self_wall * shard.ratio
        if stack:
            parent = stack[-1]
            parent[1] += wall
            parent[2] += self_cpu + frame[2]
            back = parent[3]
        else:
            back = 0
        if row >= 0:
            table[row + PREV] = mark
            table[row + STAGE] = back
            ts.current = back
            self._state_times[row + SINCE] = end
        shard.calls += 1
        shard.total += self_wall
        pending = ts.pending
        pending.append((mark, start, self_wall, self_cpu, False, False))
        if len(pending) >= FOLD_EVERY:
            self._fold(ts)
        info = ts.info
        if info is not None:
            info.stage_cpu += self_cpu
        return result

    def _generator(self, acc: StageAccumulator, result: GeneratorType[Any, Any, Any]) -> Any:
        """The call returned a generator: creating it is not a call; its items are."""
        self.cancel()
        acc.seen -= 1
        from wiredprof.profiling.instrument import timed_items

        return timed_items(self, acc, result)

    def _call_read(self, acc: StageAccumulator, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """`call` when the CPU clock is read (or the thread samples, or sends its calls to a parent)."""
        start, cpu_start = self.enter(acc)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.exit(acc, start, cpu_start, exc if isinstance(exc, Exception) else None)
            raise
        if type(result) is GeneratorType:
            return self._generator(acc, result)
        self.exit(acc, start, cpu_start)
        return result

    def exit(
        self,
        acc: StageAccumulator,
        start: float,
        cpu_start: float | None,
        error: BaseException | None = None,
        sampled: bool = False,
    ) -> None:
        """Mark the end of the call begun by `enter`; records its self time.

        A sampled call's time is not added to its caller's children here: the caller
        excludes the whole sampled window (profiler start and stop included) with `exclude`.
        `cpu_start` None: the CPU clock was not read at the start (see `call`).
        """
        cpu_end = self.cpu_clock() if cpu_start is not None else 0.0
        end = self.clock()
        self._finish(self._local.ts, acc, start, end, cpu_start, cpu_end, error, sampled)

    def _finish(
        self, ts: ThreadState, acc: StageAccumulator, start: float, end: float, cpu_start: float | None,
        cpu_end: float, error: BaseException | None, sampled: bool,
    ) -> None:
        """The end of a call: its self time, the state table, its span (in the common case, inline)."""
        stack = ts.stack
        if stack:
            shard, child_wall, child_cpu, _ = stack.pop()
        else:
            shard, child_wall, child_cpu = ts.shards.get(acc) or self._shard(ts, acc), 0.0, 0.0
        if sampled:
            ts.sampling -= 1
            ts.fast = ts.fold_here and not ts.sampling
        wall = end - start
        if cpu_start is None:  # CPU not read: the stage's measured share of the self time
            own = wall - child_wall
            cpu = (own if own > 0.0 else 0.0) * shard.ratio + child_cpu
        else:
            cpu = cpu_end - cpu_start
        if stack and not sampled:
            parent = stack[-1]
            parent[1] += wall
            parent[2] += cpu
        table = self._state_table
        if table is not None and ts.table is table and ts.row >= 0:
            row = ts.row
            number = stack[-1][3] if stack else 0
            table[row + PREV] = ts.current
            table[row + STAGE] = number
            ts.current = number
            self._state_times[row + SINCE] = end
        self_wall = wall - child_wall
        if not self_wall > 0.0:  # max(0.0, x) without the builtin call
            self_wall = 0.0
        self_cpu = cpu - child_cpu
        if self_cpu > self_wall:  # both clocks tick in their own steps: never more CPU than wall
            self_cpu = self_wall
        elif not self_cpu > 0.0:
            self_cpu = 0.0
        if cpu_start is not None and not sampled:
            shard.cpu_was_read(self_wall, self_cpu)
        if error is None and not sampled and ts.fast:
            shard.calls += 1
            shard.total += self_wall
            pending = ts.pending
            pending.append((acc.number, start, self_wall, self_cpu, False, False))
            if len(pending) >= FOLD_EVERY:
                self._fold(ts)
            info = ts.info
            if info is not None:
                info.stage_cpu += self_cpu
            return
        self._record_rare(ts, shard, start, self_wall, self_cpu, error, sampled)

    def _record_rare(
        self, ts: ThreadState, shard: StageShard, start: float, wall: float, cpu: float,
        error: BaseException | None, sampled: bool,
    ) -> None:
        """A failed or sampled call, a call inside a sampled one, or any call in a forked child."""
        acc = shard.acc
        err = error_info(error) if error is not None else None
        sampled = sampled or ts.sampling > 0  # it ran under another call's profiler: not timed
        if sampled:
            ts.sampled_cycle = True  # the cycle this call is part of is not timed either
        info = ts.info
        if info is not None:
            info.stage_cpu += cpu
        if not ts.fold_here:
            self.link.send(SpanRecord(acc.pipeline, acc.stage, acc.kind, acc.index, acc.function,
                                      acc.host, start, wall, cpu, err, sampled))
            # The child's copy keeps counts too: the call-tree sampler decides from them.
            if sampled:
                acc.sampled += 1
            else:
                shard.calls += 1
                shard.total += wall
            return
        with self._lock:
            if sampled:
                acc.sampled += 1
            if err is not None:
                acc.errors += 1
                acc.last_error = err
        if not sampled:
            shard.calls += 1
            shard.total += wall
        ts.pending.append((acc.number, start, wall, cpu, err is not None, sampled))
        if len(ts.pending) >= FOLD_EVERY:
            self._fold(ts)

    def _fold(self, ts: ThreadState) -> None:
        """Fold this thread's finished spans into its shards and the timeline window.

        Grouped by stage with C-level sorting and `groupby`: no Python step per span.
        """
        pending = ts.pending
        batch = pending[:]
        pending.clear()
        self._window.extend(batch)
        if any(map(_SAMPLED_FLAG, batch)):
            batch = [span for span in batch if not span[5]]  # a sampled call: counted, never timed
        by_number = ts.by_number
        if len(by_number) == 1:
            for shard in by_number.values():
                shard.fold(list(map(_WALL, batch)), map(_CPU, batch))
            return
        _fold_by_stage(batch, by_number.get)

    def exclude(self, wall: float, cpu: float, untimed_cycle: bool = False) -> None:
        """Count `wall`/`cpu` seconds as a child of the innermost call in progress (not its own).

        `untimed_cycle`: the seconds were wiredprof's own (a measurement), so the pipeline
        cycle they fell in is not timed either, as a cycle with a sampled call is not.
        """
        ts = self._local.ts
        if untimed_cycle:
            ts.sampled_cycle = True
        stack = ts.stack
        if stack:
            parent = stack[-1]
            parent[1] += wall
            parent[2] += cpu

    def cancel(self, sampled: bool = False) -> None:
        """Drop the innermost call begun on this thread without recording it."""
        ts = self._local.ts
        stack = ts.stack
        if stack:
            stack.pop()
        if sampled:
            ts.sampling -= 1
            ts.fast = ts.fold_here and not ts.sampling
        table = self._state_table
        if table is not None and ts.table is table and ts.row >= 0:
            number = stack[-1][3] if stack else 0
            table[ts.row + PREV] = ts.current
            table[ts.row + STAGE] = number
            ts.current = number
            self._state_times[ts.row + SINCE] = self.clock()

    def flush_thread(self) -> None:
        """Fold the calling thread's finished spans now (a pipeline thread that ends)."""
        ts = self._local.ts
        if ts.fold_here and ts.pending:
            self._fold(ts)

    def settle(self) -> None:
        """Fold the spans of this thread and of threads that ended, before reading the totals.

        A thread folds its own spans; once it has ended nobody else writes its list, and
        its spans go into their stages' common shards here. Reading a stage then scans only
        live threads' lists, instead of every list for every figure of every stage.
        """
        if self.in_child:
            return
        self.flush_thread()
        with self._lock:
            live = []
            for ref, pending in self._owners:
                if ref() is not None:
                    live.append((ref, pending))
                    continue
                batch = pending[:]
                pending.clear()
                self._window.extend(batch)
                _fold_by_stage([span for span in batch if not span[5]],
                               lambda n: acc.base if (acc := self._numbers.get(n)) is not None else None)
                self._pending_lists[:] = [p for p in self._pending_lists if p is not pending]
            self._owners[:] = live

    def add_span(
        self,
        acc: StageAccumulator,
        start: float,
        wall: float,
        cpu: float,
        error: ErrorInfo | None = None,
        sampled: bool = False,
    ) -> None:
        """Fold one finished call recorded elsewhere (a child process) into its stage."""
        with self._lock:
            base = acc.base
            if sampled:
                acc.sampled += 1
            else:
                base.calls += 1
                base.total += wall
                base.fold([wall], [cpu])
            if error is not None:
                acc.errors += 1
                acc.last_error = error
            self._window.append((acc.number, start, wall, cpu, error is not None, sampled))

    def add_transfer(self, acc: StageAccumulator, sent: int, back: int) -> None:
        """One call's pickled arguments and result sizes (bytes)."""
        if self.in_child:
            self.link.send(TransferRecord(acc.pipeline, acc.stage, sent, back))
            return
        with self._lock:
            acc.transfer_samples += 1
            acc.transfer_in += sent
            acc.transfer_out += back

    def add_callback(self, acc: StageAccumulator, wall: float, cpu: float, size: int = -1,
                     pickle_s: float = 0.0, unpickle_s: float = 0.0) -> None:
        """One call-back to host A made during a call of `acc` (`size` < 0: bytes not measured)."""
        if self.in_child:
            self.link.send(CallbackRecord(acc.pipeline, acc.stage, wall, cpu, size, pickle_s, unpickle_s))
            acc.callbacks += 1  # the child's copy counts too: callbacks.py samples sizes by it
            return
        with self._lock:
            acc.callbacks += 1
            acc.callback_s += wall
            acc.callback_cpu_s += cpu
            if size >= 0:
                acc.callback_sized += 1
                acc.callback_bytes += size
                acc.callback_pickle_s += pickle_s
                acc.callback_unpickle_s += unpickle_s

    def forward(self, record: Record) -> None:
        """Send a record to the parent now (from a child process; no-op in the parent)."""
        if self.in_child:
            self.link.send_now(record)

    def process_killed(self, pipeline: str, pid: int, signum: int) -> None:
        """A pipeline's process died from a signal: the call it was in is a failed call of its stage."""
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        hint = " (the kernel's OOM killer sends it when memory runs out)" if signum == signal.SIGKILL else ""
        info = ErrorInfo("Killed", f"{pipeline}'s process (pid {pid}) was killed by {name}{hint}")
        self.killed.append(info)
        acc = self._stage_in_flight(pid)
        if acc is not None:
            with self._lock:
                acc.errors += 1
                acc.last_error = ErrorInfo("Killed", f"{acc.name} was running when {info.message}")

    def _stage_in_flight(self, tid: int) -> StageAccumulator | None:
        """The stage a (now dead) thread was in, from the state table it left behind."""
        table = self._state_table
        if table is None:
            return None
        for i in range(0, SLOTS * ROW, ROW):
            if table[i] == tid and table[i + STAGE] > 0:
                return self._numbers.get(table[i + STAGE])
        return None

    def count_event(self, acc: StageAccumulator, what: str) -> None:
        """Count an event of an offloaded stage: a retry, a local fallback, a timeout, a link loss."""
        if self.in_child:
            self.link.send(EventRecord(acc.pipeline, acc.stage, what))
            return
        with self._lock:
            setattr(acc, what, getattr(acc, what) + 1)
            self.offload_events.append((self.clock() - self.t0, acc.pipeline, acc.stage, acc.host, what))

    def add_cycle(self, pipeline: str, wall: float, failed: bool = False, sampled: bool | None = None) -> None:
        """Fold one finished cycle of `pipeline` (ended on this thread, unless forwarded).

        A cycle in which a call ran under the call-tree sampler counts as a run, but its
        time is kept out, as that call's is.
        """
        ts = self._local.ts
        if sampled is None:
            sampled = ts.sampled_cycle
            if sampled:
                ts.sampled_cycle = False
        if not ts.fold_here:
            self.link.send(CycleRecord(pipeline, wall, failed, sampled))
            return
        shard = ts.cycles.get(pipeline)
        if shard is None:
            shard = ts.cycles[pipeline] = CycleShard()
            with self._lock:
                cyc = self.cycles.get(pipeline)
                if cyc is None:
                    cyc = self.cycles[pipeline] = CycleAccumulator(pipeline)
                cyc.shards.append(shard)
        shard.runs += 1
        if sampled:
            shard.sampled += 1
        else:
            shard.total += wall
            if wall > shard.max:
                shard.max = wall
        if failed:
            shard.errors += 1

    def cycles_done(self, pipeline: str) -> int:
        """Completed cycles of `pipeline` as seen by this process."""
        if self.in_child:
            return self.link.child_cycles.get(pipeline, 0)
        cyc = self.cycles.get(pipeline)
        return cyc.runs if cyc is not None else 0

    # -- pipeline threads and processes ---------------------------------------------
    def on_pipeline_end(self, pipeline: str) -> None:
        """A pipeline ends on this thread: note its exact CPU; a child tells the parent its threads."""
        self.flush_thread()
        info = self.threads.get(threading.get_native_id())
        if info is not None:
            info.cpu = max(info.cpu, self.cpu_clock())
        if self.in_child:
            threads = [(tid, t.name, t.pipeline, t.role, t.cpu, t.stage_cpu) for tid, t in self.threads.items()]
            self.link.queue(ThreadsRecord(os.getpid(), threads, tuple(_thread_names_alive().items())))
            if self._wake is not None:
                w = self._wake.stats()
                self.link.queue(WakeRecord(os.getpid(), w.samples, w.late_sum_s, w.late_min_s, w.during, w.ref))

    # -- child processes -----------------------------------------------------------
    @property
    def inbox_address(self) -> str:
        """The address of the inbox every process of the run sends its records to ("" before one is open)."""
        return self.link.address

    def open_inbox(self) -> str:
        """Before any process of the flow starts: the datagram socket every descendant sends its records to.

        Its address reaches processes that are spawned rather than forked (see profiling/child.py);
        forked ones inherit the outbox.
        """
        return self.link.open_inbox(self._after_fork_in_child)

    def connect_to_parent(self, address: str, owner_pid: int) -> None:
        """In a spawned process of the run: forward every record to the run's recorder at `address`."""
        self.link.connect(address, owner_pid)
        self.owner_pid = owner_pid
        self._after_fork_in_child()

    def _after_fork_in_child(self) -> None:
        self._owners = []
        self._local = ThreadLocal(self.owner_pid, self._pending_lists, self._owners)
        self._pending_lists[:] = [self._local.ts.pending]
        self.threads = {}
        # This process's own GIL and cores: how long its threads wait to run again (wakeprobe.py).
        self._wake = WakeProbe(active=stages_in_progress).start()
        try:
            import multiprocessing.util as mp_util

            # Forked multiprocessing children leave through os._exit: atexit never runs,
            # but multiprocessing's finalizers do.
            mp_util.Finalize(self, self.flush, exitpriority=100)
        except Exception:  # pragma: no cover - multiprocessing always importable
            log.debug("no multiprocessing finalizer", exc_info=True)

    def flush(self) -> None:
        """Send what a child process holds to the parent (in the parent: fold this thread's spans)."""
        if self.in_child:
            self.link.flush()
        else:
            self.flush_thread()

    def apply(self, batch: list[Record]) -> None:
        """Fold records forwarded by a child process."""
        dispatch, extra = self._dispatch, self.extra_handlers
        for rec in batch:
            handler = dispatch.get(type(rec)) or extra.get(type(rec))
            if handler is None and isinstance(rec, tuple) and rec and isinstance(rec[0], str):
                handler = extra.get(rec[0])  # a kind named by a string (older callers)
            if handler is not None:
                handler(rec)

    def _apply_span(self, r: SpanRecord) -> None:
        acc = self.stage(r.pipeline, r.stage, r.kind, r.stage_index, r.function, r.host)
        self.add_span(acc, r.start, r.wall, r.cpu, r.error, r.sampled)

    def _apply_cycle(self, r: CycleRecord) -> None:
        self.add_cycle(r.pipeline, r.wall, r.failed, r.sampled)

    def _apply_transfer(self, r: TransferRecord) -> None:
        acc = self.stages.get((r.pipeline, r.stage))
        if acc is not None:
            self.add_transfer(acc, r.sent, r.back)

    def _apply_event(self, r: EventRecord) -> None:
        acc = self.stages.get((r.pipeline, r.stage))
        if acc is not None:
            self.count_event(acc, r.what)

    def _apply_threads(self, r: ThreadsRecord) -> None:
        for tid, name, pipeline, role, cpu, stage_cpu in r.threads:
            self.child_threads[(r.pid, tid)] = ThreadInfo(name, pipeline, role, stage_cpu, cpu)
        self.thread_names.update(r.names)

    def _apply_number(self, r: NumberRecord) -> None:
        self._numbers[r.number] = self.stage(r.pipeline, r.stage, r.kind, r.stage_index, r.function)

    def _apply_callback(self, r: CallbackRecord) -> None:
        acc = self.stages.get((r.pipeline, r.stage))
        if acc is not None:
            self.add_callback(acc, r.wall, r.cpu, r.size, r.pickle_s, r.unpickle_s)

    def _apply_wake(self, r: WakeRecord) -> None:
        known = self.wake_by_pid.get(r.pid)
        if known is None or r.samples >= known.samples:
            self.wake_by_pid[r.pid] = WakeStats(r.samples, r.late_sum_s, r.late_min_s, self._renumbered(r.during),
                                                self._renumbered(r.ref))

    def _renumbered(self, by_number: dict[int, _V]) -> dict[int, _V]:
        """A child's per-stage map with this recorder's stage numbers (stages it does not know dropped)."""
        out = {}
        for number, value in by_number.items():
            acc = self.accumulator_by_number(number)
            if acc is not None:
                out[acc.number] = value
        return out

    def _apply_calltree(self, r: CallTreeRecord) -> None:
        if self.call_trees is not None:
            self.call_trees.add_json(r.pipeline, r.stage, r.session, r.ordinal)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every record children sent so far has been folded (bounded)."""
        self.link.drain(timeout)

    def close(self) -> None:
        """Stop reading from child processes."""
        self.link.close()


_current: Recorder | None = None


def current_recorder() -> Recorder | None:
    """The recorder of the run in progress, or None when wiredprof is not recording."""
    return _current


def set_current_recorder(recorder: Recorder | None) -> None:
    global _current
    _current = recorder
