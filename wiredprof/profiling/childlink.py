"""What a forked child process of the flow sends to the parent's recorder, and how.

Records are small typed tuples (pickled in batches over a datagram socket pair opened
before the fork); the parent's reader thread hands each batch to the recorder, which
dispatches on the record's type.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
import time
from typing import Any, Callable, NamedTuple, Union

from wiredprof.profile import ErrorInfo

__all__ = [
    "SpanRecord",
    "CycleRecord",
    "TransferRecord",
    "EventRecord",
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


class ThreadsRecord(NamedTuple):
    """A child's threads at the end of its pipeline: (tid, name, pipeline, role, cpu, stage cpu)."""

    pid: int
    threads: list[tuple[int, str, str, str, float, float]]


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


Record = Union[SpanRecord, CycleRecord, TransferRecord, EventRecord, ThreadsRecord, NumberRecord, CallTreeRecord,
               CallbackRecord]


class ChildLink:
    """The parent's inbox and, in a forked child, the outbox of records to it."""

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
        self.child_cycles: dict[str, int] = {}

    @property
    def open(self) -> bool:
        return self._inbox is not None

    def open_inbox(self, after_fork_in_child: Callable[[], None]) -> None:
        """Before forking: the socket pair, the reader thread, and the child's fork hook."""
        if self._inbox is not None:
            return
        self._inbox, self._outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setblocking(True)
        self._reader = threading.Thread(target=self._read_inbox, name="wiredprof-inbox", daemon=True)
        self._reader.start()

        def in_child() -> None:
            self._pending = []
            self.child_cycles = {}
            self._last_forward = self._clock()
            after_fork_in_child()

        os.register_at_fork(after_in_child=in_child)

    def send(self, record: Record) -> None:
        """Queue a record in a child; sent in batches (64 records or every 0.25 s)."""
        if type(record) is CycleRecord:
            self.child_cycles[record.pipeline] = self.child_cycles.get(record.pipeline, 0) + 1
        self._pending.append(record)
        now = self._clock()
        if len(self._pending) >= _FORWARD_BATCH or now - self._last_forward >= _FORWARD_EVERY_S:
            self.flush()

    def send_now(self, record: Record) -> None:
        self._pending.append(record)
        self.flush()

    def queue(self, record: Record) -> None:
        """Queue a record to go with the next batch."""
        self._pending.append(record)

    def flush(self) -> None:
        """Send what a child process holds to the parent (no-op in the parent)."""
        if os.getpid() == self.owner_pid or self._outbox is None or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._last_forward = self._clock()
        self._send_batch(batch)

    def _send_batch(self, batch: list[Record]) -> None:
        assert self._outbox is not None
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
        for s in (self._outbox, self._inbox):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._inbox = self._outbox = None
