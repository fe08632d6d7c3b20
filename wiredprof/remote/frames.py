"""Length-prefixed frames over a paramiko channel (host A's side of the wire format).

The layout lives in `worker.py` (`HEADER`, `Kind`), shared with host B. Sends go out as
`memoryview` slices: paramiko's `sendall(bytes)` re-copies the remaining buffer for every
packet, which made a 100 MiB send take a minute.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable

import paramiko

from wiredprof.remote.worker import DEFAULT_MAX_FRAME, FRAME_MAGIC, HEADER, Kind, frame_problem

__all__ = ["FrameChannel", "LinkClosed", "BadFrame", "PayloadStream"]

_RECV_CHUNK = 4 * 1024 * 1024
_SMALL_FRAME = 16 * 1024
_READ_AHEAD = 64 * 1024
_HEADER_SIZE = HEADER.size
_unpack_header = HEADER.unpack_from


class LinkClosed(EOFError):
    """The channel reached EOF or failed: the worker is gone."""


class BadFrame(LinkClosed):
    """A frame header with a bad magic, an unknown kind or a length over the limit."""


class FrameChannel:
    """Send and receive whole frames on one channel; sends are serialized by a lock.

    `last_recv` / `last_sent` (monotonic seconds) move with every chunk, not every frame,
    so a long transfer is never mistaken for a silent link.
    """

    def __init__(self, channel: paramiko.Channel, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.channel = channel
        self.max_frame = max_frame
        self._send_lock = threading.Lock()
        self._rbuf = bytearray()
        self.last_recv = self.last_sent = time.monotonic()

    def send(self, kind: int, ident: int, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send one frame; raises `LinkClosed` when the channel is gone, ValueError when too large."""
        if type(payload) is bytes and len(payload) <= _SMALL_FRAME <= self.max_frame:  # the warm path
            data = HEADER.pack(FRAME_MAGIC, kind, ident, len(payload)) + payload
            with self._send_lock:
                self._send_all(data)  # bytes: paramiko takes them as they are (a memoryview costs it two exceptions)
            self.last_sent = time.monotonic()
            return
        view = memoryview(payload).cast("B")
        if view.nbytes > self.max_frame:
            raise ValueError(f"a frame of {view.nbytes} bytes is over the limit of {self.max_frame} bytes")
        head = HEADER.pack(FRAME_MAGIC, kind, ident, view.nbytes)
        with self._send_lock:
            if view.nbytes <= _SMALL_FRAME:  # one SSH packet for a small frame, not two
                self._send_all(head + view.tobytes())
            else:
                self._send_all(memoryview(head))
                self._send_all(view)  # slices, not copies
        self.last_sent = time.monotonic()

    def _send_all(self, view: bytes | memoryview) -> None:
        # Not channel.sendall: a channel timeout (the readers' tick) would cut it short at an
        # unknown point, and it never ends on a channel that reached EOF (send returns 0).
        channel = self.channel
        try:
            while view:
                try:
                    sent = channel.send(view)
                except socket.timeout:
                    continue  # B's window is full: it reads slowly, or the watchdog ends a frozen link
                if sent <= 0:
                    raise LinkClosed("channel closed")
                view = view[sent:]
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if isinstance(exc, LinkClosed):
                raise
            raise LinkClosed(str(exc) or type(exc).__name__) from exc

    def _recv_exact(self, n: int, deadline: float | None, idle: Callable[[], None] | None) -> bytearray:
        # Small reads ask the channel for more than needed and keep the rest, so a small
        # frame (header and payload in one SSH packet) costs one recv, not two.
        if len(self._rbuf) >= n:
            out = self._rbuf[:n]
            del self._rbuf[:n]
            return out
        buf = bytearray(n)
        view = memoryview(buf)
        pos = len(self._rbuf)
        view[:pos] = self._rbuf
        self._rbuf.clear()
        while pos < n:
            want = n - pos
            chunk = self._recv(_READ_AHEAD if want < _READ_AHEAD else min(want, _RECV_CHUNK))
            if chunk is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("no frame before the deadline") from None
                if idle is not None:
                    idle()
                continue
            take = min(len(chunk), want)
            view[pos : pos + take] = chunk[:take] if take < len(chunk) else chunk
            if take < len(chunk):
                self._rbuf += chunk[take:]
            pos += take
        return buf

    def _recv(self, n: int) -> bytes | None:
        """Up to `n` bytes from the channel; None on a receive timeout (a tick with nothing)."""
        try:
            chunk: bytes = self.channel.recv(n)
        except socket.timeout:
            return None
        except (OSError, paramiko.SSHException) as exc:
            raise LinkClosed(str(exc) or type(exc).__name__) from exc
        if not chunk:
            raise LinkClosed("channel closed")
        self.last_recv = time.monotonic()
        return chunk

    def readable(self) -> bool:
        """True if a read would not block: bytes read ahead or waiting in the channel, or its end."""
        channel = self.channel
        return bool(self._rbuf) or channel.recv_ready() or channel.eof_received or channel.closed

    def next_header(self, stop: Callable[[], bool]) -> tuple[int, int, int] | None:
        """Like `read_header`, but None if `stop()` holds on a receive timeout between frames.

        Once a frame has begun, it is read whole (the next reader must start at a header)."""
        rbuf = self._rbuf
        while not rbuf:
            chunk = self._recv(_READ_AHEAD)
            if chunk is not None:
                rbuf += chunk
            elif stop():
                return None
        if len(rbuf) < _HEADER_SIZE:
            return self.read_header()
        magic, kind, ident, length = _unpack_header(rbuf)  # the header is here already: no copy
        if magic != FRAME_MAGIC or kind not in Kind.FROM_B or length > self.max_frame:
            raise BadFrame(frame_problem(magic, kind, length, self.max_frame, Kind.FROM_B) or "bad header")
        del rbuf[:_HEADER_SIZE]
        return kind, ident, length

    def read_frame(
        self, deadline: float | None = None, idle: Callable[[], None] | None = None
    ) -> tuple[int, int, bytearray]:
        """Block for the next frame (kind, id, payload). `idle` runs on each receive timeout tick."""
        kind, ident, length = self.read_header(deadline, idle)
        return kind, ident, self.read_payload(length, deadline, idle)

    def read_header(
        self, deadline: float | None = None, idle: Callable[[], None] | None = None
    ) -> tuple[int, int, int]:
        """Block for the next frame's (kind, id, payload length); read or stream the payload next.

        Raises `BadFrame` before anything is allocated for a corrupt or oversized frame.
        """
        magic, kind, ident, length = HEADER.unpack(self._recv_exact(HEADER.size, deadline, idle))
        problem = frame_problem(magic, kind, length, self.max_frame, Kind.FROM_B)
        if problem is not None:
            raise BadFrame(problem)
        return int(kind), int(ident), int(length)

    def read_payload(
        self, length: int, deadline: float | None = None, idle: Callable[[], None] | None = None
    ) -> bytearray:
        """The whole payload of the frame whose header was just read."""
        return self._recv_exact(length, deadline, idle) if length else bytearray()

    def stream_payload(self, length: int) -> PayloadStream:
        """A file object over the payload, for unpickling a large frame without buffering it whole."""
        return PayloadStream(self, length)


class PayloadStream:
    """Read-only file over one frame's payload on the channel (what pickle's Unpickler needs).

    `peek` lets the C unpickler batch small opcodes; large objects are read with `readinto`
    straight into their final buffer, so a 100 MiB result costs one copy, not three.
    """

    def __init__(self, frames: FrameChannel, length: int) -> None:
        self._frames = frames
        self.remaining = length  # bytes not yet taken from the channel
        self._buf = bytearray()  # peeked, not yet consumed

    def _fill(self, n: int) -> None:
        want = min(n - len(self._buf), self.remaining)
        if want > 0:
            self._buf += self._frames._recv_exact(want, None, None)
            self.remaining -= want

    def peek(self, n: int = 1) -> bytes:
        self._fill(max(n, 1))
        return bytes(self._buf[:n])

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._buf) + self.remaining
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def readinto(self, target: memoryview | bytearray) -> int:
        view = memoryview(target).cast("B")
        n = min(view.nbytes, len(self._buf) + self.remaining)
        have = min(n, len(self._buf))
        view[:have] = self._buf[:have]
        del self._buf[:have]
        pos = have
        while pos < n:
            chunk = self._frames._recv_exact(min(n - pos, _RECV_CHUNK), None, None)
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
            self.remaining -= len(chunk)
        return n

    def readline(self) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n") and (self._buf or self.remaining):
            out += self.read(1)
        return bytes(out)

    def drain(self) -> None:
        """Consume what is left of the payload, so the next frame starts in the right place."""
        self._buf.clear()
        while self.remaining:
            step = min(self.remaining, _RECV_CHUNK)
            self._frames._recv_exact(step, None, None)
            self.remaining -= step
