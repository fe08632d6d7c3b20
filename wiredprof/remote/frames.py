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

from wiredprof.remote.worker import HEADER

__all__ = ["FrameChannel", "LinkClosed"]

_RECV_CHUNK = 4 * 1024 * 1024


class LinkClosed(EOFError):
    """The channel reached EOF or failed: the worker is gone."""


class FrameChannel:
    """Send and receive whole frames on one channel; sends are serialized by a lock."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self._send_lock = threading.Lock()

    def send(self, kind: int, ident: int, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send one frame; raises `LinkClosed` when the channel is gone."""
        view = memoryview(payload).cast("B")
        try:
            with self._send_lock:
                self.channel.sendall(HEADER.pack(kind, ident, view.nbytes))
                if view.nbytes:
                    self.channel.sendall(view)  # type: ignore[arg-type]  # slices, not copies
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise LinkClosed(str(exc) or type(exc).__name__) from exc

    def _recv_exact(self, n: int, deadline: float | None, idle: Callable[[], None] | None) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        pos = 0
        while pos < n:
            try:
                chunk = self.channel.recv(min(n - pos, _RECV_CHUNK))
            except socket.timeout:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("no frame before the deadline") from None
                if idle is not None:
                    idle()
                continue
            except (OSError, paramiko.SSHException) as exc:
                raise LinkClosed(str(exc) or type(exc).__name__) from exc
            if not chunk:
                raise LinkClosed("channel closed")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        return buf

    def read_frame(
        self, deadline: float | None = None, idle: Callable[[], None] | None = None
    ) -> tuple[int, int, bytearray]:
        """Block for the next frame (kind, id, payload). `idle` runs on each receive timeout tick."""
        kind, ident, length = HEADER.unpack(self._recv_exact(HEADER.size, deadline, idle))
        payload = self._recv_exact(length, deadline, idle) if length else bytearray()
        return kind, ident, payload
