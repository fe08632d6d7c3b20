"""One live worker on one host: calls out, results back, proxied objects served, death noticed.

A receiver thread reads every frame and routes it: results and failures to the caller's
`Future`, output to the output sink, proxy requests to a small pool that runs them on A.
When the channel ends (worker killed, link dropped) every pending call fails at once with
`WorkerLostError`; per-call deadlines are checked by the same thread between frames.
"""

from __future__ import annotations

import collections
import itertools
import logging
import sys
import threading
import time
import types
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import paramiko

from wiredprof.errors import CallTimeoutError, MissingModuleError, PickleError, RemoteError, WorkerLostError
from wiredprof.remote.bootstrap import WorkerHello
from wiredprof.remote.frames import FrameChannel, LinkClosed
from wiredprof.remote.serialize import (
    LocalObjects,
    dump_call,
    dump_function,
    dump_value,
    function_name,
    load_stream,
    load_value,
)
from wiredprof.remote.worker import Kind, decode_json

__all__ = ["WorkerSession", "OutputSink", "RemoteTraceback", "print_output"]

log = logging.getLogger(__name__)

OutputSink = Callable[[str, str, str], None]
"""Called with (host name, "stdout" or "stderr", text) for what the remote side prints."""

_TICK_S = 0.2
_STREAM_MIN_BYTES = 1 << 20
_MAX_FUNCTIONS = 1024


def print_output(host: str, stream: str, text: str) -> None:
    """Default sink: each line to the local stream of the same name, prefixed `[host] `."""
    target = sys.stdout if stream == "stdout" else sys.stderr
    lines = text.splitlines(keepends=True)
    target.write(
        "".join(f"[{host}] {line}" if line.endswith("\n") else f"[{host}] {line}\n" for line in lines)
    )
    target.flush()


class RemoteTraceback(Exception):
    """Set as `__cause__` of a re-raised remote exception, so the remote traceback is shown."""

    def __init__(self, traceback_text: str, host: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text
        self.host = host

    def __str__(self) -> str:
        return f"\n\nTraceback on host {self.host}:\n{self.traceback_text.rstrip()}"


@dataclass
class _Pending:
    future: Future[Any]
    name: str
    fn_key: tuple[Any, ...]
    deadline: float | None


@dataclass
class _Shipped:
    fn: Any  # kept alive, so its id() stays its own
    fn_id: int
    in_flight: int = 0


def _fn_key(fn: Any) -> tuple[Any, ...]:
    # A bound method is a new object at every attribute access; key it by owner and function.
    if isinstance(fn, types.MethodType):
        return ("method", id(fn.__self__), id(fn.__func__))
    return ("callable", id(fn))


class WorkerSession:
    """A started worker on `host`: submit calls, get futures; `close()` ends it."""

    def __init__(
        self,
        host: str,
        transport: paramiko.Transport,
        channel: paramiko.Channel,
        frames: FrameChannel,
        hello: WorkerHello,
        output: OutputSink | None = None,
        proxy_threads: int = 8,
        restart_on_timeout: bool = False,
    ) -> None:
        self.host = host
        self.restart_on_timeout = restart_on_timeout
        self.transport = transport
        self.channel = channel
        self.frames = frames
        self.hello = hello
        self.output = output or print_output
        self.objects = LocalObjects()
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._define_lock = threading.Lock()
        # Callables living on B, least recently used first; bounded, for code that makes a
        # new closure per call. Only callables with no call in flight are ever dropped.
        self._functions: collections.OrderedDict[tuple[Any, ...], _Shipped] = collections.OrderedDict()
        self.max_functions = _MAX_FUNCTIONS
        self._call_ids = itertools.count(1)
        self._fn_ids = itertools.count(1)
        self._closed = threading.Event()
        self._lost_reason: str | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._proxy_pool = ThreadPoolExecutor(
            max_workers=proxy_threads, thread_name_prefix=f"wiredprof-proxy-{host}"
        )
        # Blocking channel: a timeout would also cut sends short while the window is full.
        channel.settimeout(None)
        self._threads = [
            threading.Thread(target=self._receive_loop, name=f"wiredprof-recv-{host}", daemon=True),
            threading.Thread(target=self._stderr_loop, name=f"wiredprof-stderr-{host}", daemon=True),
            threading.Thread(target=self._watchdog_loop, name=f"wiredprof-deadlines-{host}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- state ------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True until the worker or the link is gone, or `close()` was called."""
        return not self._closed.is_set() and self.transport.is_active()

    @property
    def shipped_functions(self) -> int:
        """How many callables live on B for this session."""
        return len(self._functions)

    # -- calls ------------------------------------------------------------------------------
    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None = None,
    ) -> Future[Any]:
        """Send one call; the future gets its result, its re-raised exception, or a transport error."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        if self._closed.is_set():
            future.set_exception(self._lost_error(1))
            return future
        key = _fn_key(fn)
        fn_id = self._define(fn, key)
        try:
            payload = dump_call(fn, fn_id, args, kwargs, self.objects)
        except BaseException:
            self._call_done(key)
            raise
        call_id = next(self._call_ids)
        deadline = time.monotonic() + timeout if timeout is not None else None
        with self._lock:
            lost = self._closed.is_set()
            if not lost:
                self._pending[call_id] = _Pending(future, function_name(fn), key, deadline)
        if lost:
            self._call_done(key)
            future.set_exception(self._lost_error(1))
            return future
        try:
            self.frames.send(Kind.CALL, call_id, payload)
        except LinkClosed as exc:
            self._mark_lost(f"sending failed: {exc}")
        return future

    def _define(self, fn: Callable[..., Any], key: tuple[Any, ...]) -> int:
        """The id of `fn` on B, shipping it first if needed; counts one more call in flight."""
        with self._define_lock:
            shipped = self._functions.get(key)
            if shipped is None:
                data = dump_function(fn, self.objects)
                shipped = _Shipped(fn, next(self._fn_ids))
                try:
                    self.frames.send(Kind.DEFINE, shipped.fn_id, data)
                except LinkClosed as exc:
                    self._mark_lost(f"sending failed: {exc}")
                self._functions[key] = shipped
                self._evict()
            else:
                self._functions.move_to_end(key)
            shipped.in_flight += 1
            return shipped.fn_id

    def _evict(self) -> None:
        # Caller holds _define_lock.
        excess = len(self._functions) - self.max_functions
        for key in [k for k, s in self._functions.items() if s.in_flight == 0][: max(0, excess)]:
            shipped = self._functions.pop(key)
            log.debug("host %s: dropping %s, least recently used", self.host, function_name(shipped.fn))
            try:
                self.frames.send(Kind.FORGET, shipped.fn_id)
            except LinkClosed:
                return

    def _call_done(self, key: tuple[Any, ...]) -> None:
        with self._define_lock:
            shipped = self._functions.get(key)
            if shipped is not None and shipped.in_flight > 0:
                shipped.in_flight -= 1

    def _forget(self, key: tuple[Any, ...]) -> None:
        with self._define_lock:
            shipped = self._functions.pop(key, None)
        if shipped is not None:
            try:
                self.frames.send(Kind.FORGET, shipped.fn_id)
            except LinkClosed:
                pass

    # -- receiving ------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        reason = "the channel closed"
        try:
            while not self._closed.is_set():
                kind, ident, length = self.frames.read_header()
                if kind in (Kind.RESULT, Kind.FAILURE) and length >= _STREAM_MIN_BYTES:
                    self._finish_streamed(kind, ident, length)
                    continue
                payload = self.frames.read_payload(length)
                if kind == Kind.RESULT or kind == Kind.FAILURE:
                    self._finish(kind, ident, payload)
                elif kind == Kind.OUTPUT:
                    stream = "stdout" if payload[:1] == b"\x01" else "stderr"
                    self._emit(stream, bytes(payload[1:]).decode("utf-8", "replace"))
                elif kind == Kind.PROXY_CALL:
                    self._proxy_pool.submit(self._serve_proxy, ident, payload)
                elif kind == Kind.RELEASE:
                    for ref, received in decode_json(payload).items():
                        self.objects.release(int(ref), int(received))
                else:
                    log.warning("host %s sent an unexpected frame kind %d", self.host, kind)
        except LinkClosed as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - any receiver failure ends the session
            log.exception("receiver for %s failed", self.host)
            reason = f"receiver failed: {exc!r}"
        self._mark_lost(reason)

    def _watchdog_loop(self) -> None:
        while not self._closed.wait(_TICK_S):
            self._expire_deadlines()

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        expired: list[tuple[int, _Pending]] = []
        with self._lock:
            for call_id, pending in list(self._pending.items()):
                if pending.deadline is not None and now > pending.deadline:
                    expired.append((call_id, self._pending.pop(call_id)))
        for call_id, pending in expired:
            self._call_done(pending.fn_key)
            fate = (
                "the worker was restarted to stop it"
                if self.restart_on_timeout
                else "it may still run there, and its result will be dropped"
            )
            pending.future.set_exception(
                CallTimeoutError(f"call {pending.name} on host {self.host} did not finish in time; {fate}")
            )
        if expired and self.restart_on_timeout:
            # A thread cannot be stopped from outside; ending the worker process can.
            self._mark_lost(f"restarted after {expired[0][1].name} timed out")
            self.channel.close()

    def _finish_streamed(self, kind: int, call_id: int, length: int) -> None:
        # Large replies are unpickled straight off the channel: no whole-frame buffer on A.
        stream = self.frames.stream_payload(length)
        with self._lock:
            pending = self._pending.get(call_id)
        if pending is None:
            stream.drain()  # timed out earlier
            return
        try:
            value: Any = load_stream(stream, self.objects)
            error: BaseException | None = None
        except LinkClosed:
            raise
        except Exception as exc:  # noqa: BLE001
            value, error = None, exc
        stream.drain()
        self._settle(kind, call_id, value, error)

    def _finish(self, kind: int, call_id: int, payload: bytearray) -> None:
        try:
            value: Any = load_value(payload, self.objects)
            error: BaseException | None = None
        except Exception as exc:  # noqa: BLE001
            value, error = None, exc
        self._settle(kind, call_id, value, error)

    def _settle(self, kind: int, call_id: int, value: Any, error: BaseException | None) -> None:
        with self._lock:
            pending = self._pending.pop(call_id, None)
        if pending is None:
            return  # timed out earlier
        self._call_done(pending.fn_key)
        if error is not None:
            exc = error
            pending.future.set_exception(
                RemoteError(
                    f"the reply of {pending.name} from host {self.host} cannot be loaded here: {exc!r}",
                    host=self.host,
                )
            )
            return
        if kind == Kind.RESULT:
            pending.future.set_result(value)
        else:
            if value.get("phase") == "define":
                self._forget(pending.fn_key)
            try:
                error = self._rebuild(value, pending.name)
            except Exception as exc:  # noqa: BLE001 - a malformed failure must not end the session
                error = RemoteError(f"{pending.name} failed on host {self.host}: {value!r:.300}: {exc!r}")
            pending.future.set_exception(error)

    def _rebuild(self, info: dict[str, Any], name: str) -> BaseException:
        tb = str(info.get("traceback", ""))
        phase = info.get("phase")
        type_name = f"{info.get('module')}.{info.get('type')}"
        if phase in ("load", "define") and info.get("missing_module"):
            module = str(info["missing_module"])
            top = module.split(".")[0]
            return MissingModuleError(
                f"{name} needs module {module!r}, which is not installed on host {self.host} "
                f"(Python {self.hello.python} at {self.hello.executable}): install it there "
                f"(`{self.hello.executable} -m pip install {top}`), or if it is your own code, "
                f"keep it outside site-packages here so it is shipped by value",
                module=module,
                host=self.host,
                remote_traceback=tb,
            )
        if phase == "dump":
            return PickleError(
                f"the result of {name} on host {self.host} cannot be pickled back: "
                f"{info.get('type')}: {info.get('message')}"
            )
        exc: Any = None
        if info.get("pickled"):
            try:
                exc = load_value(info["pickled"], self.objects)
            except Exception:  # noqa: BLE001 - the type may not exist here
                exc = None
        if not isinstance(exc, BaseException):
            exc = RemoteError(
                f"{name} failed on host {self.host}: {type_name}: {info.get('message')}",
                remote_type=type_name,
                remote_traceback=tb,
                host=self.host,
            )
        else:
            try:
                setattr(exc, "remote_traceback", tb)
                setattr(exc, "remote_host", self.host)
            except AttributeError:
                pass
        exc.__cause__ = RemoteTraceback(tb, self.host)
        return exc  # type: ignore[no-any-return]

    def _emit(self, stream: str, text: str) -> None:
        try:
            self.output(self.host, stream, text)
        except Exception:  # noqa: BLE001 - a broken output sink must not end the session
            log.exception("output sink failed for host %s", self.host)

    def _serve_proxy(self, req_id: int, payload: bytearray) -> None:
        """Run on A a method call that B made on a proxied object, and answer."""
        ok, data = answer_proxy_call(payload, self.objects)
        kind = Kind.PROXY_REPLY if ok else Kind.PROXY_FAIL
        try:
            self.frames.send(kind, req_id, data)
        except LinkClosed:
            pass

    def _stderr_loop(self) -> None:
        """The worker's fd 1 and 2 (C-level writes, crashes) come on the channel's stderr."""
        partial = b""
        while not self._closed.is_set():
            try:
                chunk = self.channel.recv_stderr(65536)
            except Exception:  # noqa: BLE001 - channel gone
                break
            if not chunk:
                break
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                self._stderr_tail.append(text)
                self._emit("stderr", text + "\n")
        if partial:
            self._stderr_tail.append(partial.decode("utf-8", "replace"))

    # -- ending ---------------------------------------------------------------------------
    def _lost_error(self, count: int) -> WorkerLostError:
        status = ""
        if self.channel.exit_status_ready():
            code = self.channel.recv_exit_status()
            status = f", exit status {code}" if code >= 0 else ", killed"
        tail = " | ".join(list(self._stderr_tail)[-3:])
        return WorkerLostError(
            f"the worker on host {self.host} (pid {self.hello.pid}) is gone ({self._lost_reason}{status})"
            + (f"; its last output: {tail}" if tail else "")
            + (f"; {count} pending call(s) failed" if count else "")
            + "; the next call reconnects"
        )

    def _mark_lost(self, reason: str) -> None:
        with self._lock:
            if self._lost_reason is None:
                self._lost_reason = reason
            pending = list(self._pending.values())
            self._pending.clear()
        self._closed.set()
        if pending:
            error = self._lost_error(len(pending))
            for item in pending:
                if not item.future.done():
                    item.future.set_exception(error)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker and the connection; pending calls fail with `WorkerLostError`."""
        if not self._closed.is_set():
            try:
                self.frames.send(Kind.CLOSE, 0)
            except LinkClosed:
                pass
        self._mark_lost("closed by this side")
        try:
            self.channel.close()
        finally:
            self.transport.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout_s)
        self._proxy_pool.shutdown(wait=False)


def answer_proxy_call(payload: bytes | bytearray, objects: LocalObjects) -> tuple[bool, memoryview]:
    """Run here a call B made on a proxied object: (True, pickled result) or (False, pickled failure).

    Shared by the SSH session and the Dask channel (wiredprof.cluster)."""
    try:
        op, ref, name, args, kwargs = load_value(payload, objects)
        target = objects.get(ref)
        if op == "call":
            value = getattr(target, name)(*args, **kwargs)
        elif op == "getattr":
            value = getattr(target, name)
        elif op == "setattr":
            setattr(target, name, args[0])
            value = None
        else:
            raise ValueError(f"unknown proxy operation {op!r}")
        return True, dump_value(value, objects, f"the result of {name}")
    except BaseException as exc:  # noqa: BLE001 - travels back to B and is raised there
        return False, dump_value(_proxy_failure(exc), objects)


def _proxy_failure(exc: BaseException) -> dict[str, Any]:
    import traceback

    return {
        "type": type(exc).__qualname__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "pickled": _try_pickle(exc),
    }


def _try_pickle(exc: BaseException) -> bytes | None:
    import cloudpickle

    try:
        return bytes(cloudpickle.dumps(exc))
    except Exception:  # noqa: BLE001
        return None
