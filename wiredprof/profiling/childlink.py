"""What a child process of the flow sends to the parent's recorder, and how.

Records are small typed tuples, pickled in batches over a datagram socket bound at an
abstract Unix address (Linux's abstract namespace: no file to clean up) before any process
of the flow starts. Forked children inherit the outbox; spawned ones connect to the address
(see profiling/child.py). The parent's reader thread hands each batch to the recorder,
which dispatches on the record's type.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
import time
import weakref
from typing import Any, Callable, NamedTuple, Union

from wiredprof.profile import ErrorInfo

__all__ = [
    "SpanRecord",
    "CycleRecord",
    "TransferRecord",
    "EventRecord",
    "OWN_THREAD_PREFIX",
    "ThreadsRecord",
    "NumberRecord",
    "CallTreeRecord",
    "CallbackRecord",
    "Record",
    "ChildLink",
]

log = logging.getLogger(__name__)

_FORWARD_BATCH = 64
_FORWARD_EVERY_S = 0.25


class SpanRecord(NamedTuple):
    """One finished stage call in a child."""

    pipeline: str
    stage: str
    kind: str
    stage_index: int
    function: str
    host: str
    start: float
    wall: float
    cpu: float
    error: ErrorInfo | None
    sampled: bool


class CycleRecord(NamedTuple):
    """One finished cycle of a pipeline in a child."""

    pipeline: str
    wall: float
    failed: bool
    sampled: bool


class TransferRecord(NamedTuple):
    """Pickled sizes of one sampled call's arguments and result."""

    pipeline: str
    stage: str
    sent: int
    back: int


class EventRecord(NamedTuple):
    """A retry or a local fallback of an offloaded stage ("retries" | "fallbacks")."""

    pipeline: str
    stage: str
    what: str


OWN_THREAD_PREFIX = "wiredprof-"  # the names of wiredprof's own threads in a flow's processes


class ThreadsRecord(NamedTuple):
    """A child's threads at the end of its pipeline: (tid, name, pipeline, role, cpu, stage cpu).

    `names`: (tid, name) of every thread alive there then, so that a stage's competitors are
    named after they end (wiredprof's own, its wake-up probe say, are nobody's competitors).
    """

    pid: int
    threads: list[tuple[int, str, str, str, float, float]]
    names: tuple[tuple[int, str], ...] = ()


class NumberRecord(NamedTuple):
    """A stage first seen in a child, under the number the child's rows in the state table use."""

    number: int
    pipeline: str
    stage: str
    kind: str
    stage_index: int
    function: str


class CallTreeRecord(NamedTuple):
    """A sampled call's pyinstrument session (compacted JSON)."""

    pipeline: str
    stage: str
    ordinal: int
    session: dict[str, Any]


class CallbackRecord(NamedTuple):
    """One call-back to host A made during a stage call (size < 0: bytes not measured)."""

    pipeline: str
    stage: str
    wall: float
    cpu: float
    size: int
    pickle_s: float
    unpickle_s: float


class WakeRecord(NamedTuple):
    """A child process's wake-up probe so far (profiling/wakeprobe.py): cumulative, the latest counts."""

    pid: int
    samples: int
    late_sum_s: float
    late_min_s: float
    during: dict[int, tuple[int, float]]  # stage number (the child's) -> wake-ups while it ran, their lateness
    ref: dict[int, tuple[int, float, int]] = {}  # stage number -> reference rounds while it ran, CPU s, iterations


Record = Union[SpanRecord, CycleRecord, TransferRecord, EventRecord, ThreadsRecord, NumberRecord, CallTreeRecord,
               CallbackRecord, WakeRecord]


class ChildLink:
    """The parent's inbox and, in a child process, the outbox of records to it."""

    def __init__(self, apply: Callable[[list[Record]], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self._apply = apply
        self._clock = clock
        self.owner_pid = os.getpid()
        self._inbox: socket.socket | None = None
        self._outbox: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._pending: list[Record] = []
        self._last_forward = 0.0
        self._drained = threading.Event()
        self._lock = threading.Lock()  # around the swap of `_pending`: several threads of a child forward
        self.child_cycles: dict[str, int] = {}
        self.address = ""  # the inbox's abstract address, for spawned processes
        self._after_fork_in_child: Callable[[], None] | None = None

    @property
    def open(self) -> bool:
        return self._inbox is not None

    @property
    def linked(self) -> bool:
        """True once records have somewhere to go (the inbox is open, or a spawned child connected)."""
        return self._outbox is not None

    def open_inbox(self, after_fork_in_child: Callable[[], None] | None = None) -> str:
        """Before any process of the flow starts: the inbox, its reader thread; returns its address.

        `after_fork_in_child` runs in each forked child (one fork hook for every link: see below).
        """
        if self._inbox is not None:
            return self.address
        address = f"\0wiredprof-{os.getpid()}-{os.urandom(6).hex()}"
        inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.bind(address)
        self._outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.connect(address)
        self._outbox.setblocking(True)
        self._inbox = inbox
        self.address = address
        self._after_fork_in_child = after_fork_in_child
        _links.add(self)
        self._reader = threading.Thread(target=self._read_inbox, name="wiredprof-inbox", daemon=True)
        self._reader.start()
        return address

    def connect(self, address: str, owner_pid: int) -> None:
        """In a spawned process of the run: send every record to the inbox at `address` of `owner_pid`."""
        outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            outbox.connect(address)
        except OSError:
            outbox.close()
            raise
        self.owner_pid = owner_pid
        self._outbox = outbox
        self.address = address
        self.after_fork()

    def after_fork(self) -> None:
        """In a child: nothing of the parent's is pending, and no lock is held by a thread that is gone."""
        self._pending = []
        self._lock = threading.Lock()
        self.child_cycles = {}
        self._last_forward = self._clock()

    def send(self, record: Record) -> None:
        """Queue a record in a child; sent in batches (64 records or every 0.25 s)."""
        with self._lock:
            if type(record) is CycleRecord:
                self.child_cycles[record.pipeline] = self.child_cycles.get(record.pipeline, 0) + 1
            self._pending.append(record)
            now = self._clock()
            due = len(self._pending) >= _FORWARD_BATCH or now - self._last_forward >= _FORWARD_EVERY_S
        if due:
            self.flush()

    def send_now(self, record: Record) -> None:
        with self._lock:
            self._pending.append(record)
        self.flush()

    def queue(self, record: Record) -> None:
        """Queue a record to go with the next batch."""
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        """Send what a child process holds to the parent (no-op in the parent)."""
        if os.getpid() == self.owner_pid or self._outbox is None:
            return
        with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            self._last_forward = self._clock()
        self._send_batch(batch)

    def _send_batch(self, batch: list[Record]) -> None:
        if self._outbox is None:
            return
        try:
            self._outbox.send(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            # A batch too large for one datagram: split it rather than lose it.
            if len(batch) > 1:
                half = len(batch) // 2
                self._send_batch(batch[:half])
                self._send_batch(batch[half:])
            else:
                log.warning("wiredprof: dropped a record from pid %d: %s", os.getpid(), exc)

    def _read_inbox(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        while True:
            try:
                data = inbox.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            if data == b"drained":
                self._drained.set()
                continue
            try:
                self._apply(pickle.loads(data))
            except Exception:
                log.exception("wiredprof: bad record from a child process")

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every record children sent so far has been applied (bounded).

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
        if self._inbox is not None:
            try:
                self._inbox.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
            except OSError:
                pass
        for s in (self._outbox, self._inbox):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._inbox = self._outbox = None


# Every link with an open inbox; one fork hook for all of them (a hook per link would pile up over many runs).
_links: weakref.WeakSet[ChildLink] = weakref.WeakSet()


def _links_after_fork() -> None:
    for link in list(_links):
        if link._outbox is not None:
            link.after_fork()
            if link._after_fork_in_child is not None:
                link._after_fork_in_child()


os.register_at_fork(after_in_child=_links_after_fork)
