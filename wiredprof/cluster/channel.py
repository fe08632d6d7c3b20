"""Host A's side of what Dask tasks send back through the scheduler: start requests, proxy calls.

One thread reads the session's request queue on the scheduler (bounded waits, so `close()`
ends it within a poll); proxy calls run in a small pool, as the SSH session does. A opens
no listening port: it is the Dask client that fetches the requests.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from wiredprof.cluster.task import request_queue
from wiredprof.remote.serialize import LocalObjects
from wiredprof.remote.session import answer_proxy_call

__all__ = ["TaskChannel"]

log = logging.getLogger(__name__)

_POLL_S = 0.5

StartGate = Callable[[str, str], bool]
"""Called with (call id, worker address) when a task asks to start: True lets it run."""


class TaskChannel:
    """Serves one executor's tasks: answers start requests with `gate`, runs proxy calls here."""

    def __init__(self, client: Any, session: str, objects: LocalObjects, gate: StartGate, host: str) -> None:
        from wiredprof.cluster.task import _distributed

        queue: Any = _distributed().Queue
        self.client = client
        self.objects = objects
        self.gate = gate
        self._queue_cls = queue
        self._requests = queue(request_queue(session), client=client)
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"wiredprof-dask-proxy-{host}")
        self._thread = threading.Thread(target=self._loop, name=f"wiredprof-dask-channel-{host}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                message = self._requests.get(timeout=_POLL_S)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the client is closing or the scheduler is gone
                if not self._closed.wait(_POLL_S):
                    log.debug("reading task requests failed", exc_info=True)
                continue
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - one bad message must not end the channel
                log.exception("a message from a Dask task could not be served")

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "start":
            _, call_id, worker, reply = message
            self._answer(reply, "go" if self.gate(call_id, worker) else "no: this call already started once")
        elif kind == "proxy":
            _, reply, payload = message
            self._pool.submit(self._serve_proxy, reply, payload)
        else:
            log.warning("unknown message from a Dask task: %r", kind)

    def _answer(self, reply: str, value: Any) -> None:
        # The task created the reply queue before asking, and deletes it once read: releasing
        # this side's reference at once keeps the scheduler from holding a queue per call.
        queue = self._queue_cls(reply, client=self.client)
        try:
            queue.put(value)
        finally:
            queue.close()

    def _serve_proxy(self, reply: str, payload: bytes) -> None:
        """Run here a method call a task made on a proxied object, and answer."""
        ok, data = answer_proxy_call(payload, self.objects)
        try:
            self._answer(reply, ("ok" if ok else "fail", bytes(data)))
        except Exception:  # noqa: BLE001
            log.debug("answering a proxy call failed", exc_info=True)

    def close(self) -> None:
        """Stop serving (within one poll)."""
        self._closed.set()
        self._thread.join(_POLL_S * 4)
        self._pool.shutdown(wait=False)
        try:
            self._requests.close()
        except Exception:  # noqa: BLE001 - the client may be gone already
            log.debug("releasing the request queue failed", exc_info=True)
