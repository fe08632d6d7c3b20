"""Collects stage calls and pipeline cycles with memory bounded by the number of stages.

Each stage has a `StageAccumulator` (counters plus a DDSketch for p95); the timeline keeps
a bounded window of recent spans. In a forked child process (wiredflow's process mode)
the recorder forwards its records to the parent over a datagram socket, so the parent
holds the only aggregate.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ddsketch import DDSketch

from wiredprof.profile import ErrorInfo, TimelineSpan

__all__ = [
    "StageAccumulator",
    "CycleAccumulator",
    "ThreadInfo",
    "Recorder",
    "error_info",
    "current_recorder",
    "set_current_recorder",
]

log = logging.getLogger(__name__)

# DDSketch: p95 within 1 % relative error, memory bounded by the range of values seen.
# (ddsketch.add measured 0.46 us here; a reservoir would lose the tail.)
_SKETCH_ACCURACY = 0.01
_TIMELINE_SIZE = 5000
_FORWARD_BATCH = 64
_FORWARD_EVERY_S = 0.25

# This process's id, kept current across fork: os.getpid() is a system call (0.1 us) and
# add_span asks on every stage call whether it runs in a forked child.
_pid = os.getpid()


def _update_pid_after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_update_pid_after_fork)


def error_info(exc: BaseException) -> ErrorInfo:
    """The exception as plain data, with its original traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(type=type(exc).__qualname__, message=str(exc), traceback=tb)


@dataclass
class StageAccumulator:
    """Running totals of one stage; merging two is adding them."""

    pipeline: str
    stage: str
    kind: str
    index: int = 0
    function: str = ""
    host: str = "local"
    calls: int = 0
    total: float = 0.0
    cpu: float = 0.0
    max: float = 0.0
    errors: int = 0
    sampled: int = 0
    seen: int = 0  # calls entered, sampled or not (ordinal of the next call - 1)
    retries: int = 0
    fallbacks: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    # Pickled size of arguments and results, measured on sampled calls (see instrument.py).
    transfer_samples: int = 0
    transfer_in: int = 0
    transfer_out: int = 0
    last_error: ErrorInfo | None = None
    number: int = 0  # its id in the shared thread-state table (see threads.py)
    sketch: DDSketch = field(default_factory=lambda: DDSketch(_SKETCH_ACCURACY))
    # Thread-state samples taken while a call of this stage was running (see threads.py).
    samples_running: int = 0
    samples_lock_wait: int = 0
    samples_io_wait: int = 0
    rss_peak: int = 0  # most resident memory one call added (bytes), sampled
    # Calls back to objects that stay on host A (see callbacks.py): count, time, sized bytes.
    callbacks: int = 0
    callback_s: float = 0.0
    callback_cpu_s: float = 0.0
    callback_sized: int = 0  # call-backs whose bytes were measured
    callback_bytes: int = 0  # over the measured ones
    callback_pickle_s: float = 0.0  # time pickling them took, over the measured ones
    callback_unpickle_s: float = 0.0  # and unpickling them
    competitors: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.pipeline, self.stage)

    @property
    def name(self) -> str:
        return f"{self.pipeline}.{self.stage}"

    @property
    def mean(self) -> float:
        return self.total / self.calls if self.calls else 0.0


@dataclass
class CycleAccumulator:
    """Running totals of one pipeline's cycles (one pass over its chain)."""

    pipeline: str
    runs: int = 0
    total: float = 0.0  # over timed cycles: those with no sampled call in them
    max: float = 0.0
    errors: int = 0
    sampled: int = 0  # cycles that ran a call under the call-tree sampler (not timed)

    @property
    def timed(self) -> int:
        return self.runs - self.sampled


@dataclass
class ThreadInfo:
    """What a thread of the flow is, for attributing its CPU time."""

    name: str
    pipeline: str
    role: str  # "pipeline", "mqtt-network", "main", "other"
    stage_cpu: float = 0.0
    cpu: float = 0.0  # last known total CPU of the thread


# A stage call in progress on one thread (stages can nest: MQTT connector -> storage) is a
# list [acc, child_wall, child_cpu]: a list costs a third of a small class's __init__.
_Frame = list[Any]  # [StageAccumulator, float, float]


class _ThreadState(threading.local):
    """Per thread: its stage calls in progress and its native id (asked once, not per call)."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.tid = threading.get_native_id()
        self.sampled_cycle = False
        self.slot: int | None = None  # row in the thread-state table, claimed on first use
        self.info: ThreadInfo | None = None  # what this thread is, once registered
        _thread_states.add(self)


# The thread that forks goes on in the child with a new native id: fix its cached one.
_thread_states: weakref.WeakSet[_ThreadState] = weakref.WeakSet()


def _update_thread_ids_after_fork() -> None:
    tid = threading.get_native_id()
    for state in list(_thread_states):
        state.tid = tid  # threading.local: sets it for the one thread the child has


os.register_at_fork(after_in_child=_update_thread_ids_after_fork)


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
        self.stages: dict[tuple[str, str], StageAccumulator] = {}
        self.cycles: dict[str, CycleAccumulator] = {}
        # Recent spans as plain tuples (the fields of TimelineSpan, in order): building a frozen
        # dataclass per call cost 0.8 us; `timeline` builds the TimelineSpans when read.
        self._timeline: deque[tuple[Any, ...]] = deque(maxlen=timeline_size)
        self.timeline_seen = 0
        self.threads: dict[int, ThreadInfo] = {}  # native thread id -> info
        self.mode = "plain"
        self.killed: list[ErrorInfo] = []  # pipeline processes a signal killed
        self.stage_hosts: dict[str, str] = {}  # "PIPELINE.STAGE" -> host it runs on (offloaded)
        self.call_trees: Any = None  # a CallTreeSampler, when call stacks are wanted
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._local = _ThreadState()
        self._owner_pid = os.getpid()
        self._inbox: socket.socket | None = None
        self._outbox: socket.socket | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._last_forward = 0.0
        self._reader: threading.Thread | None = None
        self._child_cycles: dict[str, int] = {}
        self._fork_hook_registered = False
        self._numbers: dict[int, StageAccumulator] = {}
        self._state_table: Any = None  # memoryview of int64 (tid, stage number) pairs
        self.child_threads: dict[tuple[int, int], ThreadInfo] = {}
        self._drained = threading.Event()
        # Handlers for extra record kinds forwarded by children ("threads", "calltree", ...).
        self.extra_handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {}

    @property
    def timeline(self) -> deque[TimelineSpan]:
        """The bounded window of recent spans, oldest first (a snapshot)."""
        with self._lock:
            raw = list(self._timeline)
        return deque((TimelineSpan(*r) for r in raw), maxlen=self._timeline.maxlen)

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
                    acc = StageAccumulator(pipeline, stage, kind or stage, index, function, where)
                    self.stages[key] = acc
                    self._number(acc)
        return acc

    def _number(self, acc: StageAccumulator) -> None:
        n = len(self._numbers) + 1
        if os.getpid() != self._owner_pid:
            # Stages first seen in a child get numbers of their own and the parent learns them.
            n |= os.getpid() << 24
            self._pending.append(("number", n, acc.pipeline, acc.stage, acc.kind, acc.index, acc.function))
        acc.number = n
        self._numbers[n] = acc

    def accumulator_by_number(self, number: int) -> StageAccumulator | None:
        return self._numbers.get(number)

    def threads_by_tid(self) -> dict[int, ThreadInfo]:
        """Every thread the run knew, by native id (child processes' included)."""
        out = {tid: info for (_pid, tid), info in self.child_threads.items()}
        for t in threading.enumerate():
            if t.native_id is not None and t.native_id not in out:
                out[t.native_id] = ThreadInfo(t.name, "", "other")
        out.update(self.threads)
        return out

    def attach_state_table(self, table: Any) -> None:
        """Share the (thread id, stage number) table with the thread-state sampler (None: stop).

        Attached once per run, before any stage call: rows claimed by threads stay theirs.
        """
        self._state_table = table

    def _claim_slot(self) -> int:
        """This thread's row in the state table: claimed once per thread, by its native id."""
        from wiredprof.profiling.statesampler import SLOTS

        table, local = self._state_table, self._local
        tid = local.tid
        slot = -1
        for probe in range(32):
            i = (tid + probe) % SLOTS
            if table[2 * i] in (0, tid):
                table[2 * i] = tid
                slot = i
                break
        local.slot = slot
        return slot

    def _mark(self, acc: StageAccumulator | None) -> None:
        """Tell the state sampler which stage this thread is in (None: none)."""
        slot = self._local.slot
        if slot is None:
            slot = self._claim_slot()
        if slot >= 0:
            self._state_table[2 * slot + 1] = acc.number if acc is not None else 0

    def register_thread(self, pipeline: str, role: str, name: str | None = None) -> None:
        """Say what the calling thread is (its CPU outside stages is framework time)."""
        tid = threading.get_native_id()
        info = self.threads.get(tid)
        if info is None or info.role != role or info.pipeline != pipeline:
            info = self.threads[tid] = ThreadInfo(name or threading.current_thread().name, pipeline, role)
        self._local.info = info
        if self._state_table is not None and self._local.slot is None:
            self._claim_slot()  # the sampler learns this process before its first stage call

    # -- recording -----------------------------------------------------------------
    def current_stage(self) -> StageAccumulator | None:
        """The innermost stage running on the calling thread, or None."""
        stack = self._local.stack
        return stack[-1][0] if stack else None

    def enter(self, acc: StageAccumulator) -> tuple[float, float]:
        """Mark the start of a call of `acc` on this thread; returns (wall, cpu) clocks."""
        local = self._local
        local.stack.append([acc, 0.0, 0.0])
        if self._state_table is not None:
            self._mark(acc)
        # CPU clock first: reading it costs 0.2-1 us (a system call), which must not count in
        # the call's wall time; exit reads the wall clock first for the same reason.
        cpu = self.cpu_clock()
        return self.clock(), cpu

    def exit(
        self,
        acc: StageAccumulator,
        start: float,
        cpu_start: float,
        error: BaseException | None = None,
        sampled: bool = False,
    ) -> None:
        """Mark the end of the call begun by `enter`; records its self time."""
        end, cpu_end = self.clock(), self.cpu_clock()
        wall, cpu = end - start, cpu_end - cpu_start
        local = self._local
        stack = local.stack
        tid = local.tid
        if stack:
            _, child_wall, child_cpu = stack.pop()
        else:
            child_wall = child_cpu = 0.0
        if stack:
            parent = stack[-1]
            parent[1] += wall
            parent[2] += cpu
        if self._state_table is not None:
            self._mark(stack[-1][0] if stack else None)
        self_wall = wall - child_wall
        if not self_wall > 0.0:  # max(0.0, x) without the builtin call
            self_wall = 0.0
        self_cpu = cpu - child_cpu
        if not self_cpu > 0.0:
            self_cpu = 0.0
        if error is None and not sampled and _pid == self._owner_pid:
            # add_span's path for a plain call in this process, inlined: it runs on every
            # stage call, and the method call with seven arguments costs about 0.15 us.
            with self._lock:
                acc.calls += 1
                acc.total += self_wall
                acc.cpu += self_cpu
                if self_wall > acc.max:
                    acc.max = self_wall
                acc.sketch.add(self_wall)
                self.timeline_seen += 1
                self._timeline.append(
                    (acc.pipeline, acc.stage, acc.host, start - self.t0, self_wall, self_cpu, False, False)
                )
                info = local.info
                if info is not None:
                    info.stage_cpu += self_cpu
            return
        err = error_info(error) if error is not None else None
        self.add_span(acc, start, self_wall, self_cpu, err, sampled, tid)

    def cancel(self) -> None:
        """Drop the innermost call begun on this thread without recording it."""
        local = self._local
        stack = local.stack
        if stack:
            stack.pop()
        if self._state_table is not None:
            self._mark(stack[-1][0] if stack else None)

    def forward_calltree(self, acc: StageAccumulator, session: Any, ordinal: int) -> None:
        """A child process sends a sampled call's pyinstrument session to the parent."""
        if os.getpid() != self._owner_pid:
            from wiredprof.profiling.calltree import compact_session_json

            self.forward_extra(("calltree", acc.pipeline, acc.stage, ordinal, compact_session_json(session)))

    def add_span(
        self,
        acc: StageAccumulator,
        start: float,
        wall: float,
        cpu: float,
        error: ErrorInfo | None = None,
        sampled: bool = False,
        tid: int = 0,
    ) -> None:
        """Fold one finished call into its stage (or forward it from a child process)."""
        if sampled:
            self._local.sampled_cycle = True  # the cycle this call is part of is not timed either
        if _pid != self._owner_pid:
            self._forward(("span", acc.pipeline, acc.stage, acc.kind, acc.index, acc.function,
                           acc.host, start, wall, cpu, error, sampled))
            # The child's copy keeps counts too: the call-tree sampler decides from them.
            if sampled:
                acc.sampled += 1
            else:
                acc.calls += 1
                acc.total += wall
            info = self.threads.get(tid)
            if info is not None:
                info.stage_cpu += cpu
            return
        with self._lock:
            if sampled:
                acc.sampled += 1
            else:
                acc.calls += 1
                acc.total += wall
                acc.cpu += cpu
                if wall > acc.max:
                    acc.max = wall
                acc.sketch.add(wall)
            if error is not None:
                acc.errors += 1
                acc.last_error = error
            self.timeline_seen += 1
            self._timeline.append(
                (acc.pipeline, acc.stage, acc.host, start - self.t0, wall, cpu, error is not None, sampled)
            )
            info = self.threads.get(tid)
            if info is not None:
                info.stage_cpu += cpu

    def add_transfer(self, acc: StageAccumulator, sent: int, back: int) -> None:
        """One call's pickled arguments and result sizes (bytes)."""
        if os.getpid() != self._owner_pid:
            self._forward(("transfer", acc.pipeline, acc.stage, sent, back))
            return
        with self._lock:
            acc.transfer_samples += 1
            acc.transfer_in += sent
            acc.transfer_out += back

    def add_callback(self, acc: StageAccumulator, wall: float, cpu: float, size: int = -1,
                     pickle_s: float = 0.0, unpickle_s: float = 0.0) -> None:
        """One call-back to host A made during a call of `acc` (`size` < 0: bytes not measured)."""
        if _pid != self._owner_pid:
            self._forward(("callback", acc.pipeline, acc.stage, wall, cpu, size, pickle_s, unpickle_s))
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

    def exclude(self, wall: float, cpu: float) -> None:
        """Keep `wall`/`cpu` seconds just spent on this thread (measuring) out of its innermost call."""
        stack = self._local.stack
        if stack:
            stack[-1][1] += wall
            stack[-1][2] += cpu

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
        from wiredprof.profiling.statesampler import SLOTS

        table = self._state_table
        if table is None:
            return None
        for i in range(SLOTS):
            if table[2 * i] == tid and table[2 * i + 1]:
                return self._numbers.get(table[2 * i + 1])
        return None

    def count_event(self, acc: StageAccumulator, what: str) -> None:
        """Count a retry or a local fallback of an offloaded stage."""
        if os.getpid() != self._owner_pid:
            self._forward(("event", acc.pipeline, acc.stage, what))
            return
        with self._lock:
            setattr(acc, what, getattr(acc, what) + 1)

    def add_cycle(self, pipeline: str, wall: float, failed: bool = False, sampled: bool | None = None) -> None:
        """Fold one finished cycle of `pipeline` (ended on this thread, unless forwarded).

        A cycle in which a call ran under the call-tree sampler counts as a run, but its
        time is kept out, as that call's is.
        """
        if sampled is None:
            local = self._local
            sampled = local.sampled_cycle
            local.sampled_cycle = False
        if os.getpid() != self._owner_pid:
            self._forward(("cycle", pipeline, wall, failed, sampled))
            return
        with self._lock:
            cyc = self.cycles.get(pipeline)
            if cyc is None:
                cyc = self.cycles[pipeline] = CycleAccumulator(pipeline)
            cyc.runs += 1
            if sampled:
                cyc.sampled += 1
            else:
                cyc.total += wall
                if wall > cyc.max:
                    cyc.max = wall
            if failed:
                cyc.errors += 1

    def cycles_done(self, pipeline: str) -> int:
        """Completed cycles of `pipeline` as seen by this process."""
        if os.getpid() != self._owner_pid:
            return self._child_cycles.get(pipeline, 0)
        cyc = self.cycles.get(pipeline)
        return cyc.runs if cyc is not None else 0

    # -- pipeline threads and processes ---------------------------------------------
    def on_pipeline_end(self, pipeline: str) -> None:
        """A pipeline ends on this thread: note its exact CPU; a child tells the parent its threads."""
        info = self.threads.get(threading.get_native_id())
        if info is not None:
            info.cpu = max(info.cpu, self.cpu_clock())
        if os.getpid() != self._owner_pid:
            threads = [(tid, t.name, t.pipeline, t.role, t.cpu, t.stage_cpu) for tid, t in self.threads.items()]
            self._pending.append(("threads", os.getpid(), threads))

    def _apply_threads(self, rec: tuple[Any, ...]) -> None:
        _, pid, threads = rec
        for tid, name, pipeline, role, cpu, stage_cpu in threads:
            self.child_threads[(pid, tid)] = ThreadInfo(name, pipeline, role, stage_cpu, cpu)

    # -- child processes -----------------------------------------------------------
    def open_inbox(self) -> None:
        """Before forking: a datagram socket that child processes send their records to."""
        if self._inbox is not None:
            return
        self._inbox, self._outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setblocking(True)
        self._reader = threading.Thread(target=self._read_inbox, name="wiredprof-inbox", daemon=True)
        self._reader.start()
        if not self._fork_hook_registered:
            os.register_at_fork(after_in_child=self._after_fork_in_child)
            self._fork_hook_registered = True

    def _after_fork_in_child(self) -> None:
        self._pending = []
        self._child_cycles = {}
        self._last_forward = self.clock()
        self._local = _ThreadState()
        self.threads = {}
        try:
            import multiprocessing.util as mp_util

            # Forked multiprocessing children leave through os._exit: atexit never runs,
            # but multiprocessing's finalizers do.
            mp_util.Finalize(self, self.flush, exitpriority=100)
        except Exception:  # pragma: no cover - multiprocessing always importable
            log.debug("no multiprocessing finalizer", exc_info=True)

    def _forward(self, record: tuple[Any, ...]) -> None:
        if record[0] == "cycle":
            self._child_cycles[record[1]] = self._child_cycles.get(record[1], 0) + 1
        self._pending.append(record)
        now = self.clock()
        if len(self._pending) >= _FORWARD_BATCH or now - self._last_forward >= _FORWARD_EVERY_S:
            self.flush()

    def forward_extra(self, record: tuple[Any, ...]) -> None:
        """Send a record (thread CPU, call tree) from a child process to the parent."""
        if os.getpid() != self._owner_pid:
            self._pending.append(record)
            self.flush()

    def flush(self) -> None:
        """Send what a child process holds to the parent (no-op in the parent)."""
        if os.getpid() == self._owner_pid or self._outbox is None or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._last_forward = self.clock()
        try:
            self._outbox.send(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            # A batch too large for one datagram: split it rather than lose it.
            if len(batch) > 1:
                half = len(batch) // 2
                self._pending = batch[:half]
                self.flush()
                self._pending = batch[half:]
                self.flush()
            else:
                log.warning("wiredprof: dropped a record from pid %d: %s", os.getpid(), exc)

    def _read_inbox(self) -> None:
        assert self._inbox is not None
        while True:
            try:
                data = self._inbox.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            if data == b"drained":
                self._drained.set()
                continue
            try:
                self.apply(pickle.loads(data))
            except Exception:
                log.exception("wiredprof: bad record from a child process")

    def apply(self, batch: list[tuple[Any, ...]]) -> None:
        """Fold records forwarded by a child process."""
        for rec in batch:
            kind = rec[0]
            if kind == "span":
                _, pipeline, stage, skind, index, function, host, start, wall, cpu, err, sampled = rec
                acc = self.stage(pipeline, stage, skind, index, function, host)
                self.add_span(acc, start, wall, cpu, err, sampled)
            elif kind == "cycle":
                self.add_cycle(rec[1], rec[2], rec[3], rec[4])
            elif kind == "transfer":
                known = self.stages.get((rec[1], rec[2]))
                if known is not None:
                    self.add_transfer(known, rec[3], rec[4])
            elif kind == "event":
                target = self.stages.get((rec[1], rec[2]))
                if target is not None:
                    self.count_event(target, rec[3])
            elif kind == "threads":
                self._apply_threads(rec)
            elif kind == "number":
                _, number, pipeline, stage, skind, index, function = rec
                acc = self.stage(pipeline, stage, skind, index, function)
                self._numbers[number] = acc
            elif kind in self.extra_handlers:
                self.extra_handlers[kind](rec)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every record children sent so far has been folded (bounded).

        Datagrams queue in order, so once our own marker comes out, all before it are in.
        """
        if self._outbox is None or self._reader is None or not self._reader.is_alive():
            return
        self._drained.clear()
        self._outbox.send(b"drained")
        if not self._drained.wait(timeout):
            log.warning("wiredprof: records from child processes still arriving after %.0f s", timeout)

    def close(self) -> None:
        """Stop reading from child processes."""
        for s in (self._outbox, self._inbox):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._inbox = self._outbox = None


_current: Recorder | None = None


def current_recorder() -> Recorder | None:
    """The recorder of the run in progress, or None when wiredprof is not recording."""
    return _current


def set_current_recorder(recorder: Recorder | None) -> None:
    global _current
    _current = recorder
