"""One live worker on one host: calls out, results back, proxied objects served, death noticed.

One reader at a time takes frames off the channel and routes them: results and failures to
the caller's `Future`, output to the output sink, proxy requests to a small pool that runs
them on A. A caller waiting for its own call (`result`) reads itself while nobody else does,
so its answer needs no hop through another thread; otherwise (several calls in flight,
`submit` without waiting, frames between calls) the receiver thread reads, and between calls
the watchdog hands it whatever B sent (heartbeats) or the channel's end.
When the channel ends (worker killed, link dropped), a frame is corrupt, or nothing at all
came from B for `dead_after_s` (a frozen link: no FIN, no RST), every pending call fails
at once with a `WorkerLostError`; per-call deadlines are checked by a watchdog thread.

Failures are of two kinds and never confused: a stage's own exception comes back re-raised
with its type and marked `wiredprof_origin = "stage"`; everything else is a `LinkError`
whose `started` says whether B had begun the call (B acknowledges each start).
"""

from __future__ import annotations

import collections
import itertools
import linecache
import logging
import pickle
import re
import socket
import sys
import threading
import time
import types
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import paramiko

from wiredprof.errors import (
    CallTimeoutError,
    FrameError,
    LinkSilentError,
    MissingModuleError,
    PickleError,
    RemoteError,
    WorkerLostError,
)
from wiredprof.remote.bootstrap import WorkerHello
from wiredprof.remote.frames import BadFrame, FrameChannel, LinkClosed
from wiredprof.remote.observers import proxy_observers
from wiredprof.remote.serialize import (
    LocalObjects,
    dump_call,
    dump_function,
    dump_value,
    function_name,
    load_stream,
    load_value,
)
from wiredprof.remote.worker import DEFAULT_DEAD_AFTER_S, Kind, decode_json

__all__ = ["WorkerSession", "OutputSink", "RemoteTraceback", "print_output", "rebuild_exception",
           "with_source_lines"]

log = logging.getLogger(__name__)

OutputSink = Callable[[str, str, str], None]
"""Called with (host name, "stdout" or "stderr", text) for what the remote side prints."""

_TICK_S = 0.2
_THREAD = -1  # `_reader` when the receiver thread reads (else None, or the reading caller's thread id)
_STREAM_MIN_BYTES = 1 << 20
_MAX_FUNCTIONS = 1024
# Arguments of only these types are pickled by the C pickler alone (cloudpickle adds nothing).
_PLAIN_ARGS = frozenset({type(None), bool, int, float, str, bytes})
_PLAIN_MAX = 65536


_FRAME_LINE = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in ')


def with_source_lines(text: str) -> str:
    """A traceback from B with the source lines B could not show filled in from this side.

    Code shipped by value keeps its file name from A, but the file is only here; a frame
    whose line B did show (a module installed there) is left as it is.
    """
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        frame = _FRAME_LINE.match(line)
        shown = i + 1 < len(lines) and lines[i + 1].startswith("    ")
        if frame is not None and not shown:
            source = linecache.getline(frame["file"], int(frame["line"])).strip()
            if source:
                out.append(f"    {source}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


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


def rebuild_exception(info: dict[str, Any], objects: Any, tb: str, *, host: str, where: str, failed: str,
                      stage: bool) -> BaseException:
    """The exception a call raised on `host`, re-created here from its failure frame `info`: the
    original type if it unpickles here, else a `RemoteError` saying `failed`; with the remote
    traceback `tb` as its cause (shown as "on host `where`"), and marked as the stage's own if
    `stage` (even when its type is a wiredprof link error). SSH and Dask executors alike."""
    type_name = f"{info.get('module')}.{info.get('type')}"
    exc: Any = None
    if info.get("pickled"):
        try:
            exc = load_value(info["pickled"], objects)
        except Exception:  # noqa: BLE001 - the type may not exist here
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(f"{failed}: {type_name}: {info.get('message')}", remote_type=type_name,
                          remote_traceback=tb, host=host)
    marks = [("remote_traceback", tb), ("remote_host", host)] + ([("wiredprof_origin", "stage")] if stage else [])
    for attr, value in marks:
        try:
            setattr(exc, attr, value)
        except AttributeError:
            pass
    exc.__cause__ = RemoteTraceback(tb, where)
    return exc  # type: ignore[no-any-return]


@dataclass
class _Pending:
    future: Future[Any]
    fn: Any
    fn_key: tuple[Any, ...]
    deadline: float | None
    started: bool = False  # B acknowledged that the call began

    @property
    def name(self) -> str:
        """The callable's readable name (for messages only: not computed on the warm path)."""
        return function_name(self.fn)


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
        dead_after_s: float = DEFAULT_DEAD_AFTER_S,
    ) -> None:
        self.host = host
        self.dead_after_s = dead_after_s
        self.restart_on_timeout = restart_on_timeout
        self.transport = transport
        self.channel = channel
        self.frames = frames
        self.hello = hello
        self.output = output or print_output
        self.objects = LocalObjects()
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # a call was acknowledged or ended
        self._waiting = 0  # threads in wait_started (the warm path notifies nobody otherwise)
        self._reader: int | None = None  # who reads the channel: nobody, _THREAD, or a caller's ident
        self._turn = threading.Condition(self._lock)  # the receiver thread's turn to read came
        self._define_lock = threading.Lock()
        # Callables living on B, least recently used first; bounded, for code that makes a
        # new closure per call. Only callables with no call in flight are ever dropped.
        self._functions: collections.OrderedDict[tuple[Any, ...], _Shipped] = collections.OrderedDict()
        self.max_functions = _MAX_FUNCTIONS
        self._call_ids = itertools.count(1)
        self._fn_ids = itertools.count(1)
        self._closed = threading.Event()
        self._lost_reason: str | None = None
        self._lost_cls: type[WorkerLostError] = WorkerLostError
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._proxy_pool = ThreadPoolExecutor(
            max_workers=proxy_threads, thread_name_prefix=f"wiredprof-proxy-{host}"
        )
        self._handlers: dict[int, Callable[[int, bytearray], None]] = {
            Kind.STARTED: self._on_started,
            Kind.HEARTBEAT_B: lambda ident, payload: None,  # its arrival moved frames.last_recv
            Kind.RESULT: self._finish,
            Kind.FAILURE: self._on_failure,
            Kind.OUTPUT: self._on_output,
            Kind.PROXY_CALL: self._on_proxy_call,
            Kind.RELEASE: self._on_release,
        }
        # Readers wake every tick to see whether they may stop (sends retry on it: frames.py).
        channel.settimeout(_TICK_S)
        self._threads = [
            threading.Thread(target=self._receive_loop, name=f"wiredprof-recv-{host}", daemon=True),
            threading.Thread(target=self._stderr_loop, name=f"wiredprof-stderr-{host}", daemon=True),
            threading.Thread(target=self._watchdog_loop, name=f"wiredprof-deadlines-{host}", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name=f"wiredprof-heartbeat-{host}", daemon=True),
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
        return self._submit(fn, args, kwargs, timeout, None)[0]

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             timeout: float | None = None) -> Any:
        """Send one call and wait for its result (or raise its exception, or a transport error).

        While no other reader is at it, this thread reads the channel itself, so the answer
        needs no hop through the receiver thread."""
        me = threading.get_ident()
        try:
            future, call_id = self._submit(fn, args, kwargs, timeout, me)
            if self._reader == me:
                pending = self._pending
                self._read_frames(lambda: call_id not in pending)
        finally:
            if self._reader == me:  # only this thread moves the role away from itself
                with self._lock:
                    self._hand_on()
        return future.result()

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None, leader: int | None) -> tuple[Future[Any], int]:
        # `leader`: the thread id of a caller that reads for itself if nobody reads (`call`).
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        if self._closed.is_set():
            future.set_exception(self._lost_error(1, started=False))
            return future, 0
        key = _fn_key(fn)
        fn_id = self._define(fn, key)
        try:
            payload = _dump_plain_call(fn_id, args, kwargs) or dump_call(fn, fn_id, args, kwargs, self.objects)
            if len(payload) > self.frames.max_frame:
                raise PickleError(
                    f"the call to {function_name(fn)} is {len(payload)} bytes pickled, over the frame limit of "
                    f"{self.frames.max_frame} bytes: send less, or raise `max_frame_mb` in [hosts.{self.host}]"
                )
        except BaseException:
            self._call_done(key)
            raise
        call_id = next(self._call_ids)
        deadline = time.monotonic() + timeout if timeout is not None else None
        with self._lock:
            lost = self._closed.is_set()
            if not lost:
                self._pending[call_id] = _Pending(future, fn, key, deadline)
                if self._reader is None:
                    if leader is not None:
                        self._reader = leader
                    else:
                        self._reader = _THREAD
                        self._turn.notify()
        if lost:
            self._call_done(key)
            future.set_exception(self._lost_error(1, started=False))
            return future, 0
        try:
            self.frames.send(Kind.CALL, call_id, payload)
        except LinkClosed as exc:
            # sendall raised, so B never got the whole frame: this call certainly did not start.
            with self._lock:
                mine = self._pending.pop(call_id, None)
            if mine is not None:
                self._call_done(key)
                self._mark_lost(f"sending failed: {exc}")
                future.set_exception(self._lost_error(1, started=False))
            else:
                self._mark_lost(f"sending failed: {exc}")
        return future, call_id

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

    def wait_started(self, future: Future[Any], timeout: float) -> bool:
        """Wait until B has begun the call of `future` (acknowledged or answered it): True, or
        False when it did not within `timeout` seconds or the call ended without starting."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while True:
                pending = next((p for p in self._pending.values() if p.future is future), None)
                if pending is None:
                    break
                left = deadline - time.monotonic()
                if pending.started or left <= 0:
                    return pending.started
                self._waiting += 1
                try:
                    self._settled.wait(left)
                finally:
                    self._waiting -= 1
        if not future.done():
            return False  # never sent, or not this session's
        exc = future.exception()
        return exc is None or getattr(exc, "started", True) is True

    # -- receiving ------------------------------------------------------------------------
    def _hand_on(self) -> None:
        # Caller holds _lock and is the reader: the receiver thread reads on while calls are
        # in flight or something already came; else nobody (the watchdog looks every tick).
        if not self._closed.is_set() and (self._pending or self.frames.readable()):
            self._reader = _THREAD
            self._turn.notify()
        else:
            self._reader = None

    def _receive_loop(self) -> None:
        while True:
            with self._lock:
                while self._reader != _THREAD:
                    if self._closed.is_set():
                        return
                    self._turn.wait()
            if not self._read_frames(lambda: not self._pending and not self.frames.readable()):
                return
            with self._lock:
                if self._reader == _THREAD and not self._pending and not self.frames.readable():
                    self._reader = None

    def _read_frames(self, stop: Callable[[], bool]) -> bool:
        """Read and route frames until `stop()` holds between two frames: True; or until the
        session ended (the channel closed, a bad frame): False."""
        reason = "the channel closed"
        handlers = self._handlers
        try:
            while not stop():
                header = self.frames.next_header(stop)
                if header is None:
                    return True
                kind, ident, length = header
                if kind in (Kind.RESULT, Kind.FAILURE) and length >= _STREAM_MIN_BYTES:
                    self._finish_streamed(kind, ident, length)
                    continue
                payload = self.frames.read_payload(length)
                handler = handlers.get(kind)
                if handler is not None:
                    handler(ident, payload)
                else:
                    log.warning("host %s sent an unexpected frame kind %d", self.host, kind)
            return True
        except BadFrame as exc:
            reason = f"bad frame from the host: {exc}; the session was ended"
            self._mark_lost(reason, FrameError)
            self._abort()
            return False
        except LinkClosed as exc:
            reason = str(exc)
            self._threads[1].join(0.5)  # the worker's last words (stderr) end with the channel
        except Exception as exc:  # noqa: BLE001 - any reader failure ends the session
            log.exception("reading from %s failed", self.host)
            reason = f"reading failed: {exc!r}"
        self._mark_lost(reason)
        return False

    def _watchdog_loop(self) -> None:
        while not self._closed.wait(_TICK_S):
            self._expire_deadlines()
            with self._lock:
                waiting = self.frames.readable()  # came while nobody read: a heartbeat, a late frame, the end
                if self._reader is None and waiting:
                    self._reader = _THREAD
                    self._turn.notify()
            silent = time.monotonic() - self.frames.last_recv
            if silent > self.dead_after_s and not waiting:
                self._mark_lost(
                    f"nothing came from it for {silent:.1f} s, over dead_after_s = {self.dead_after_s:g}: "
                    "the link is dead or frozen",
                    LinkSilentError,
                )
                self._abort()

    def _heartbeat_loop(self) -> None:
        # Its own thread: a send blocks while the link is frozen, and the watchdog must not.
        every = self.dead_after_s / 3.0
        while not self._closed.wait(min(every, 1.0)):
            if time.monotonic() - self.frames.last_sent >= every:
                try:
                    self.frames.send(Kind.HEARTBEAT, 0)
                except LinkClosed:
                    return

    def _abort(self) -> None:
        """Close the channel and the connection without waiting on a peer that may never answer."""

        threading.Thread(target=self._close_link, name=f"wiredprof-abort-{self.host}", daemon=True).start()

    def _close_link(self) -> None:
        # Closing sends a message; on a link that is already gone that fails, which is fine.
        try:
            self.channel.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            self.transport.close()

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        expired: list[tuple[int, _Pending]] = []
        with self._lock:
            for call_id, pending in list(self._pending.items()):
                if pending.deadline is not None and now > pending.deadline:
                    expired.append((call_id, self._pending.pop(call_id)))
            if expired:
                self._settled.notify_all()
        for call_id, pending in expired:
            self._call_done(pending.fn_key)
            fate = (
                "the worker was restarted to stop it"
                if self.restart_on_timeout
                else "it may still run there, and its result will be dropped"
            )
            begun = "it had started there" if pending.started else "the host had not acknowledged its start"
            pending.future.set_exception(
                CallTimeoutError(
                    f"call {pending.name} on host {self.host} did not finish in time ({begun}); {fate}",
                    started=True if pending.started else None,
                )
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

    def _on_started(self, call_id: int, payload: bytearray) -> None:
        with self._lock:
            started = self._pending.get(call_id)
            if started is not None:
                started.started = True
                if self._waiting:
                    self._settled.notify_all()

    def _on_output(self, call_id: int, payload: bytearray) -> None:
        stream = "stdout" if payload[:1] == b"\x01" else "stderr"
        self._emit(stream, bytes(payload[1:]).decode("utf-8", "replace"))

    def _on_proxy_call(self, req_id: int, payload: bytearray) -> None:
        self._proxy_pool.submit(self._serve_proxy, req_id, payload)

    def _on_release(self, ident: int, payload: bytearray) -> None:
        for ref, received in decode_json(payload).items():
            self.objects.release(int(ref), int(received))

    def _on_failure(self, call_id: int, payload: bytearray) -> None:
        self._finish(call_id, payload, Kind.FAILURE)

    def _finish(self, call_id: int, payload: bytearray, kind: int = Kind.RESULT) -> None:
        try:
            value: Any = load_value(payload, self.objects)
            error: BaseException | None = None
        except Exception as exc:  # noqa: BLE001
            value, error = None, exc
        self._settle(kind, call_id, value, error)

    def _settle(self, kind: int, call_id: int, value: Any, error: BaseException | None) -> None:
        with self._lock:
            pending = self._pending.pop(call_id, None)
            if self._waiting:
                self._settled.notify_all()
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
        tb = with_source_lines(str(info.get("traceback", "")))
        phase = info.get("phase")
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
        if phase == "size":
            return PickleError(
                f"the result of {name} on host {self.host} is too large to send back: {info.get('message')}; "
                f"return less, or raise `max_frame_mb` in [hosts.{self.host}]"
            )
        return rebuild_exception(info, self.objects, tb, host=self.host, where=self.host,
                                 failed=f"{name} failed on host {self.host}",
                                 stage=info.get("origin", "stage") == "stage")

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
            except socket.timeout:
                continue
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
    def _lost_error(self, count: int, started: bool | None) -> WorkerLostError:
        status = ""
        if self.channel.exit_status_ready():
            code = self.channel.recv_exit_status()
            status = f", exit status {code}" if code >= 0 else ", killed"
        tail = " | ".join(list(self._stderr_tail)[-3:])
        begun = {True: "it had started there", False: "it never started there",
                 None: "it may have started there"}[started]
        return self._lost_cls(
            f"the worker on host {self.host} (pid {self.hello.pid}) is gone ({self._lost_reason}{status})"
            + (f"; its last output: {tail}" if tail else "")
            + (f"; {count} pending call(s) failed ({begun})" if count else "")
            + "; the next call reconnects",
            started=started,
        )

    def _mark_lost(self, reason: str, cls: type[WorkerLostError] = WorkerLostError) -> None:
        with self._lock:
            if self._lost_reason is None:
                self._lost_reason = reason
                self._lost_cls = cls
            pending = list(self._pending.values())
            self._pending.clear()
            self._closed.set()
            self._settled.notify_all()
            self._turn.notify_all()
        # A call B never acknowledged may still have started (the ack may be lost with the link).
        for item in pending:
            self._call_done(item.fn_key)
            if not item.future.done():
                item.future.set_exception(self._lost_error(len(pending), True if item.started else None))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker and the connection; pending calls fail with `WorkerLostError`."""
        if not self._closed.is_set():
            try:
                self.frames.send(Kind.CLOSE, 0)
            except LinkClosed:
                pass
        self._mark_lost("closed by this side")
        self._close_link()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(min(timeout_s, 1.0))
        self._proxy_pool.shutdown(wait=False)


def _dump_plain_call(fn_id: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes | None:
    """The pickled call when its arguments are all plain values (the warm path), else None."""
    plain = _PLAIN_ARGS
    for value in (*args, *kwargs.values()) if kwargs else args:
        if type(value) not in plain or (type(value) in (str, bytes) and len(value) > _PLAIN_MAX):
            return None  # large buffers go through the pickler that writes them without a copy
    return pickle.dumps((fn_id, args, kwargs), pickle.HIGHEST_PROTOCOL)


def answer_proxy_call(payload: bytes | bytearray, objects: LocalObjects) -> tuple[bool, memoryview]:
    """Run here a call B made on a proxied object: (True, pickled result) or (False, pickled failure).

    Shared by the SSH session and the Dask channel (wiredprof.cluster)."""
    t0 = t1 = time.perf_counter()
    try:
        op, ref, name, args, kwargs = load_value(payload, objects)
        t1 = time.perf_counter()
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
        t2 = time.perf_counter()
        ok, answer = True, dump_value(value, objects, f"the result of {name}")
    except BaseException as exc:  # noqa: BLE001 - travels back to B and is raised there
        t2 = time.perf_counter()
        ok, answer = False, dump_value(_proxy_failure(exc), objects)
    pickling = time.perf_counter() - t2
    for observe in list(proxy_observers):  # remote/observers.py
        try:
            observe(len(payload) + len(answer), t1 - t0, pickling)
        except Exception:  # noqa: BLE001 - a measurement must never break the call
            log.debug("proxy observer failed", exc_info=True)
    return ok, answer


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
