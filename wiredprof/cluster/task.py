"""Host B's side on a Dask worker: one stage call inside one Dask task.

Shipped by value (wiredprof is never assumed installed on the cluster): `run_call` and
what it uses need only the stdlib, cloudpickle and distributed, like wiredprof's SSH worker,
whose proxy and failure helpers it reuses.

Messages to host A go through the scheduler (distributed `Queue`s), never to a port on A:
- at most once: before the stage runs, the task asks A whether this call may start; A
  answers "go" once per call. When Dask re-runs a task whose worker died (its own
  rescheduling, `allowed-failures`), the second attempt is refused here, before the stage
  runs again;
- proxies: a method call on an object that stayed on A (wiredflow's `db_connectors`) is
  sent to A, run there, and its result comes back.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
import time
import uuid
from typing import Any, cast

import cloudpickle

from wiredprof.remote.worker import _failure_info, _make_pickler_class, _make_proxy_class, _ProxyAwareUnpickler

__all__ = ["run_call", "request_queue", "reply_queue", "ANSWER_TIMEOUT_S", "worker_facts"]

ANSWER_TIMEOUT_S = 60.0  # how long a task waits for host A to answer (A is gone after that)
_FUNCTIONS_ATTR = "_wiredprof_functions"
_MAX_FUNCTIONS = 256


def request_queue(session: str) -> str:
    """The scheduler queue host A reads a session's requests from."""
    return f"wiredprof-{session}-requests"


def reply_queue(session: str) -> str:
    """A fresh queue name for one answer from host A."""
    return f"wiredprof-{session}-reply-{uuid.uuid4().hex}"


def _distributed() -> Any:
    """The `distributed` package (imported late: it is the worker's, never needed to import this)."""
    import distributed

    return distributed


class _Link:
    """What the reused SSH-worker helpers call a server: pickling with proxies, requests to A."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.Proxy: Any = _make_proxy_class(cast(Any, self))
        self._pickler = _make_pickler_class(cloudpickle, self.Proxy)

    def ask(self, message: tuple[Any, ...], reply: str) -> Any:
        """Send `message` to host A through the scheduler and wait for its answer."""
        queue = _distributed().Queue
        answer_queue = queue(reply)  # created before A can answer (A releases its side at once)
        requests = queue(request_queue(self.session))
        try:
            requests.put(message)
        finally:
            requests.close()
        try:
            return answer_queue.get(timeout=ANSWER_TIMEOUT_S)
        finally:
            answer_queue.close()

    def proxy_born(self, ref: int, proxy: Any) -> None:
        """Proxies are not released early on a cluster: A holds the object for the session."""

    def dumps(self, obj: Any) -> bytes:
        out = io.BytesIO()
        self._pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return out.getvalue()

    def loads(self, data: bytes | bytearray | memoryview) -> Any:
        return _ProxyAwareUnpickler(cast(Any, self), io.BytesIO(data)).load()

    def proxy_request(self, op: str, ref: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        reply = reply_queue(self.session)
        kind, payload = self.ask(("proxy", reply, self.dumps((op, ref, name, args, kwargs))), reply)
        value = self.loads(payload)
        if kind == "fail":
            exc = pickle.loads(value["pickled"]) if value.get("pickled") else None
            if not isinstance(exc, BaseException):
                exc = RuntimeError("%s: %s" % (value.get("type"), value.get("message")))
            raise exc
        return value


def _functions(worker: Any) -> dict[tuple[str, str], Any]:
    table = getattr(worker, _FUNCTIONS_ATTR, None)
    if table is None:
        table = {}
        setattr(worker, _FUNCTIONS_ATTR, table)
    return table  # type: ignore[no-any-return]


def run_call(
    session: str, call_id: str, fn_token: str, fn_blob: bytes, call_blob: bytes, at_most_once: bool
) -> bytes:
    """Run one stage call on this Dask worker; always returns a pickled outcome for host A.

    ("ok", value, meta), ("error", failure, meta) for the stage's own exception, or
    ("refused", reason, meta) when A did not let this attempt start.
    """
    worker = _distributed().get_worker()
    link = _Link(session)
    meta: dict[str, Any] = {"worker": worker.address, "pid": os.getpid(), "thread": threading.get_ident()}
    if at_most_once:
        reply = reply_queue(session)
        try:
            answer = link.ask(("start", call_id, worker.address, reply), reply)
        except Exception as exc:  # noqa: BLE001 - A unreachable: do not run
            answer = "no answer from host A (%s)" % (exc,)
        if answer != "go":
            return pickle.dumps(("refused", str(answer), meta))
    functions = _functions(worker)
    try:
        fn = functions.get((session, fn_token))
        if fn is None:
            fn = link.loads(fn_blob)
            if len(functions) >= _MAX_FUNCTIONS:
                functions.clear()
            functions[(session, fn_token)] = fn
        _, args, kwargs = link.loads(call_blob)
    except BaseException as exc:  # noqa: BLE001 - a module missing on the worker, most often
        return pickle.dumps(("error", _failure_info(exc, "load", cast(Any, link)), meta))
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - the stage's own exception is its result
        meta["wall_s"], meta["cpu_s"] = time.perf_counter() - wall0, time.thread_time() - cpu0
        return link.dumps(("error", _failure_info(exc, "run", cast(Any, link)), meta))
    meta["wall_s"], meta["cpu_s"] = time.perf_counter() - wall0, time.thread_time() - cpu0
    try:
        return link.dumps(("ok", value, meta))
    except BaseException as exc:  # noqa: BLE001
        return link.dumps(("error", _failure_info(exc, "dump", cast(Any, link)), meta))


def worker_facts() -> dict[str, Any]:
    """Runs on a worker: its address, threads, memory limit, Python and package versions."""
    import sys
    from importlib import metadata

    worker = _distributed().get_worker()
    versions: dict[str, str | None] = {}
    for dist in ("cloudpickle", "dask", "distributed"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "address": worker.address,
        "threads": int(worker.state.nthreads),
        "memory_limit": int(worker.memory_manager.memory_limit or 0),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "hostname": os.uname().nodename,
        "packages": versions,
    }
