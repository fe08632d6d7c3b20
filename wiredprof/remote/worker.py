"""The remote side of wiredprof's engine: stdlib + cloudpickle only.

This file is never installed on host B. The bootstrap (see `bootstrap.py`) sends its source
over the SSH channel's stdin and runs `serve()`. It talks to host A only through that
channel: length-prefixed frames on the saved stdin/stdout fds, while fd 0 reads /dev/null
and fd 1 goes to stderr, so a stray print (even from C code) cannot corrupt the stream.

Host A imports this module too, for the frame layout and message codes, so both sides
share one definition of the wire format.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import itertools
import json
import os
import pickle
import struct
import sys
import threading
import time
import traceback
import weakref
from typing import Any, BinaryIO, Callable

__all__ = [
    "HEADER",
    "MAGIC",
    "FRAME_MAGIC",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_DEAD_AFTER_S",
    "Kind",
    "frame_problem",
    "serve",
    "encode_json",
    "decode_json",
]

MAGIC = "wiredprof-worker"
# magic (4 bytes), kind (u8), id (u32: a call, a function or a proxy request), payload length (u64).
# Both sides check magic, kind and length before allocating anything for the payload.
HEADER = struct.Struct("!4sBIQ")
FRAME_MAGIC = b"wpF1"
DEFAULT_MAX_FRAME = 1 << 30
DEFAULT_DEAD_AFTER_S = 15.0
_OUTPUT_FLUSH_BYTES = 8192
_PROXY_POLL_S = 1.0
# The reader runs a call itself; only if the call is still running this long after it began
# does a standby thread take over reading (at once when the call waits for a proxied object).
_TAKE_OVER_S = 0.005
_ACTIVE_S = 1.0  # a standby watches the reader only this long after the last call began
_SMALL_FRAME = 65536
_PLAIN_SCAN = 4096  # small pickles are scanned for persistent ids; a larger one goes to the proxy-aware unpickler
# Results of these types are pickled with the C pickler alone (cloudpickle adds nothing).
_PLAIN_RESULTS = frozenset({type(None), bool, int, float, str, bytes})


class Kind:
    """Frame kinds. A->B below 100, B->A from 100."""

    SETUP = 1  # json: {"cloudpickle": A's version, "max_threads": int}; sent with the source
    DEFINE = 2  # id = function id; payload = pickled callable, kept for the connection
    CALL = 3  # id = call id; payload = pickled (function id, args, kwargs)
    PROXY_REPLY = 4  # id = proxy request id; payload = pickled value
    PROXY_FAIL = 5  # id = proxy request id; payload = pickled failure info
    CLOSE = 7
    FORGET = 8  # id = function id to drop
    MODULES = 9  # json: {name: [is_pkg, source]}, the answer to NEED_MODULES
    HEARTBEAT = 10  # A is alive (sent when A has sent nothing else for a while)
    HELLO = 101  # json: pid, python, executable, cloudpickle version (or null), platform
    READY = 102  # json: cloudpickle version in use and whether it was shipped
    RESULT = 103  # id = call id; payload = pickled result
    FAILURE = 104  # id = call id; payload = pickled failure info
    OUTPUT = 105  # id = call id (0: none); payload = stream byte (1 out, 2 err) + utf-8 text
    PROXY_CALL = 106  # id = proxy request id; payload = pickled (op, ref, name, args, kwargs)
    NEED_MODULES = 108  # json: [names] B lacks (or has in another version than A)
    RELEASE = 109  # json: {ref: proxies received}, for refs whose every proxy B has dropped
    STARTED = 110  # id = call id: B is about to run it (sent before the stage's code runs)
    HEARTBEAT_B = 111  # B is alive

    FROM_A = frozenset({1, 2, 3, 4, 5, 7, 8, 9, 10})
    FROM_B = frozenset({101, 102, 103, 104, 105, 106, 108, 109, 110, 111})


def frame_problem(magic: bytes, kind: int, length: int, max_frame: int, kinds: frozenset[int]) -> str | None:
    """Why a frame header is bad (checked before its payload is read), or None."""
    if magic != FRAME_MAGIC:
        return "bad magic %r (not a wiredprof frame: the stream is corrupt)" % (magic,)
    if kind not in kinds:
        return "unknown frame kind %d" % kind
    if length > max_frame:
        return "a frame claims %d bytes, over the limit of %d bytes" % (length, max_frame)
    return None


def encode_json(obj: Any) -> bytes:
    """Encode a handshake message (these travel before cloudpickle is loaded)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def decode_json(data: bytes | bytearray | memoryview) -> Any:
    """Decode a handshake message."""
    return json.loads(bytes(data).decode())


class _SourceImporter:
    """Imports modules whose source came over the channel (cloudpickle when B lacks it).

    A meta path finder and loader by duck typing: `importlib.abc` costs 35 ms to import.
    """

    def __init__(self, modules: dict[str, list[Any]]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        entry = self.modules.get(fullname)
        if entry is None:
            return None
        loader: Any = self
        return importlib.util.spec_from_loader(fullname, loader, is_package=bool(entry[0]))

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        source = self.modules[module.__name__][1]
        module.__file__ = "<wiredprof-shipped %s>" % module.__name__
        exec(compile(source, module.__file__, "exec"), module.__dict__)


class _Output(io.TextIOBase):
    """sys.stdout / sys.stderr on B: text goes back to A as OUTPUT frames, tagged with the call."""

    def __init__(self, server: _Server, stream: int) -> None:
        self._server = server
        self._stream = stream
        self._local = threading.local()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Both 1 and 2 end up on the channel's stderr, which A prints with the host's prefix.
        return self._stream

    def write(self, text: str) -> int:  # type: ignore[override]
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = []
            self._local.size = 0
        buf.append(text)
        self._local.size += len(text)
        if "\n" in text or self._local.size >= _OUTPUT_FLUSH_BYTES:
            self.flush()
        return len(text)

    def flush(self) -> None:
        buf = getattr(self._local, "buf", None)
        if not buf:
            return
        text = "".join(buf)
        buf.clear()
        self._local.size = 0
        self._server.send(
            Kind.OUTPUT, self._server.current_call(), bytes([self._stream]) + text.encode("utf-8", "replace")
        )


class _Server:
    """One worker process: reads frames, runs calls in threads, answers over the channel."""

    def __init__(self, rfile: BinaryIO, wfd: int) -> None:
        self.rfile = rfile
        self.wfd = wfd
        self.send_lock = threading.Lock()
        self.functions: dict[int, Any] = {}
        self.local = threading.local()
        self.proxy_ids = itertools.count(1)
        self.proxy_waiters: dict[int, list[Any]] = {}
        self.proxy_lock = threading.Lock()
        # Proxies alive and received per ref; finalizers only append to `dead_proxies` (no
        # locks, no sends: they may run inside any allocation); releases go out after calls.
        self.proxies_alive: dict[int, int] = {}
        self.proxies_received: dict[int, int] = {}
        self.dead_proxies: collections.deque[int] = collections.deque()
        self.closed = threading.Event()
        # Leader/follower: one thread reads, and runs each call it reads itself, so no thread
        # hand-off sits between a request and its run. An idle thread stands by: when the
        # call runs longer than _TAKE_OVER_S (or waits for A), it takes over reading; a short
        # call ends with its thread reading on, and no other thread ever woke up.
        self.turn = threading.Condition()
        self.handoff = False
        self.idle = 0
        self.inline: int | None = None  # the thread running a call in the reader's place
        self.inline_since = 0.0
        self.watching = False  # one idle thread polls `inline`; the others sleep
        self.active_until = 0.0
        self.threads = 1
        self.max_threads = 32
        self.backlog: collections.deque[tuple[int, bytes | bytearray]] = collections.deque()
        self.cloudpickle: Any = None
        self.Proxy: type | None = None
        self.pickler_cls: Any = None
        self.max_frame = DEFAULT_MAX_FRAME
        self.dead_after = DEFAULT_DEAD_AFTER_S
        self.last_recv = time.monotonic()
        self.handlers: dict[int, Callable[[int, bytes | bytearray], None]] = {
            Kind.CALL: self._on_call,
            Kind.DEFINE: self._define,
            Kind.PROXY_REPLY: self._proxy_answer,
            Kind.PROXY_FAIL: self._proxy_failed,
            Kind.FORGET: self._forget,
            Kind.HEARTBEAT: self._heartbeat,
        }

    # -- wire ---------------------------------------------------------------------------
    def send(self, kind: int, ident: int, payload: bytes | bytearray | memoryview = b"") -> None:
        if type(payload) is bytes and len(payload) <= _SMALL_FRAME <= self.max_frame:  # the warm path
            data = HEADER.pack(FRAME_MAGIC, kind, ident, len(payload)) + payload
            with self.send_lock:
                self._write(memoryview(data))
            return
        view = memoryview(payload).cast("B")
        if view.nbytes > self.max_frame:
            raise ValueError("a frame of %d bytes is over the limit of %d bytes" % (view.nbytes, self.max_frame))
        head = HEADER.pack(FRAME_MAGIC, kind, ident, view.nbytes)
        with self.send_lock:
            if view.nbytes <= _SMALL_FRAME:  # one write, so sshd sends one packet
                self._write(memoryview(head + view.tobytes()))
            else:
                self._write(memoryview(head))
                self._write(view)

    def _write(self, view: memoryview) -> None:
        while view.nbytes:
            written = os.write(self.wfd, view)
            view = view[written:]

    def _read_exact(self, n: int) -> bytearray | None:
        buf = bytearray(n)
        view = memoryview(buf)
        pos = 0
        while pos < n:
            got = self.rfile.readinto(view[pos:])  # type: ignore[attr-defined]
            if not got:
                return None
            self.last_recv = time.monotonic()
            pos += got
        return buf

    def read_frame(self) -> tuple[int, int, bytes | bytearray] | None:
        """The next frame from A; None at EOF or on a bad frame (which ends the worker)."""
        head = self.rfile.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        self.last_recv = time.monotonic()
        magic, kind, ident, length = HEADER.unpack(head)
        problem = frame_problem(magic, kind, length, self.max_frame, Kind.FROM_A)
        if problem is not None:
            _say("bad frame from host A: %s; the worker ends" % problem)
            return None
        payload: bytes | bytearray | None
        if length <= _SMALL_FRAME:  # a large one moves last_recv with every chunk (_read_exact)
            payload = self.rfile.read(length)
            if len(payload) < length:
                return None
        else:
            payload = self._read_exact(length)
            if payload is None:
                return None
        return kind, ident, payload

    def current_call(self) -> int:
        return int(getattr(self.local, "call_id", 0))

    # -- setup ----------------------------------------------------------------------------
    def handshake(self) -> bool:
        self.send(Kind.HELLO, 0, encode_json(_hello()))
        frame = self.read_frame()
        if frame is None or frame[0] != Kind.SETUP:
            return False
        setup = decode_json(frame[2])
        modules: dict[str, list[Any]] = {}
        if _cloudpickle_version() != setup.get("cloudpickle"):
            # Missing here, or another version than A's: ask A for its own (one round trip).
            self.send(Kind.NEED_MODULES, 0, encode_json(["cloudpickle"]))
            frame = self.read_frame()
            if frame is None or frame[0] != Kind.MODULES:
                return False
            modules = decode_json(frame[2])
            for name in list(sys.modules):
                if name in modules:
                    del sys.modules[name]
            sys.meta_path.insert(0, _SourceImporter(modules))
        import cloudpickle

        self.cloudpickle = cloudpickle
        self.Proxy = _make_proxy_class(self)
        self.pickler_cls = _make_pickler_class(cloudpickle, self.Proxy)
        self.max_threads = max(2, int(setup.get("max_threads", 32)))
        self.max_frame = int(setup.get("max_frame", DEFAULT_MAX_FRAME))
        self.dead_after = float(setup.get("dead_after", DEFAULT_DEAD_AFTER_S))
        for target in (self._heartbeat_loop, self._silence_loop):
            threading.Thread(target=target, name="wiredprof-heartbeat", daemon=True).start()
        sys.stdout = _Output(self, 1)
        sys.stderr = _Output(self, 2)
        self.send(
            Kind.READY, 0, encode_json({"cloudpickle": cloudpickle.__version__, "shipped": bool(modules)})
        )
        return True

    def _heartbeat_loop(self) -> None:
        while not self.closed.wait(self.dead_after / 3.0):
            try:
                self.send(Kind.HEARTBEAT_B, 0)
            except OSError:
                return

    def _silence_loop(self) -> None:
        # Its own thread: the heartbeat sender may block on a full pipe when A is frozen.
        while not self.closed.wait(min(1.0, self.dead_after / 10.0)):
            silent = time.monotonic() - self.last_recv
            if silent > self.dead_after:
                _say("nothing from host A for %.1f s (dead_after %.1f s): the worker ends" % (silent, self.dead_after))
                _exit(self)

    # -- pickling ----------------------------------------------------------------------
    def dumps(self, obj: Any) -> memoryview:
        out = io.BytesIO()
        self.pickler_cls(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return out.getbuffer()

    def loads(self, data: bytes | bytearray | memoryview) -> Any:
        if type(data) is not memoryview and len(data) <= _PLAIN_SCAN and b"Q" not in data and b"P" not in data:
            return pickle.loads(data)  # no persistent-id opcode (BINPERSID, PERSID) in it: the C unpickler alone
        return _ProxyAwareUnpickler(self, io.BytesIO(data)).load()

    # -- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        """Lead: read frames until EOF or CLOSE; returns only then."""
        handlers = self.handlers
        while True:
            frame = self.read_frame()
            if frame is None or frame[0] == Kind.CLOSE:
                return
            handler = handlers.get(frame[0])
            if handler is not None:  # SETUP and MODULES belong to the handshake
                handler(frame[1], frame[2])

    def _on_call(self, call_id: int, payload: bytes | bytearray) -> None:
        me = threading.get_ident()
        with self.turn:
            if not self.idle:
                if self.threads >= self.max_threads:
                    self.backlog.append((call_id, payload))  # every thread busy: first free one runs it
                    return
                self.threads += 1  # a standby, so that reading goes on if this call runs long
                threading.Thread(target=self._stand_by, name="wiredprof-worker", daemon=True).start()
            if not self.watching:
                self.turn.notify()  # an idle thread starts watching
            now = time.monotonic()
            self.inline, self.inline_since, self.active_until = me, now, now + _ACTIVE_S
        self._run_call(call_id, payload)
        with self.turn:
            if self.inline == me:  # nobody took over: this thread reads on
                self.inline = None
                return
        self._follow()  # back here when it is this thread's turn to read again

    def hand_off_reading(self) -> None:
        """A call is about to wait for A: if its thread was the reader, a standby reads now."""
        with self.turn:
            if self.inline == threading.get_ident():
                self.inline = None
                self.handoff = True
                self.turn.notify_all()

    def _follow(self) -> None:
        """Run backlogged calls, then stand by until it is this thread's turn to read."""
        while True:
            with self.turn:
                if not self.backlog:
                    self.idle += 1
                    try:
                        self._stand_by_turn()
                    finally:
                        self.idle -= 1
                    return
                ident, payload = self.backlog.popleft()
            self._run_call(ident, payload)

    def _stand_by_turn(self) -> None:
        """Wait (holding `turn`) until handed the reading, or until the reader's call runs long.

        One idle thread watches, polling every `_TAKE_OVER_S` while calls come in; the others
        (and the watcher too, once calls stop for `_ACTIVE_S`) sleep until notified."""
        watcher = False
        try:
            while not self.handoff:
                now = time.monotonic()
                if self.inline is not None and now - self.inline_since >= _TAKE_OVER_S:
                    self.inline = None  # the call runs long: read in its thread's place
                    return
                if self.active_until > now and (watcher or not self.watching):
                    watcher = self.watching = True
                    start = self.inline_since if self.inline is not None else now
                    self.turn.wait(max(start + _TAKE_OVER_S - now, 0.0005))
                else:
                    if watcher:
                        watcher = self.watching = False
                    self.turn.wait()
            self.handoff = False
        finally:
            if watcher:
                self.watching = False

    def _stand_by(self) -> None:
        try:
            self._follow()
            self.run()
        finally:
            _exit(self)

    def _forget(self, fn_id: int, payload: bytes | bytearray) -> None:
        self.functions.pop(fn_id, None)

    def _heartbeat(self, ident: int, payload: bytes | bytearray) -> None:
        pass  # receiving it was the point (last_recv)

    def _define(self, fn_id: int, payload: bytes | bytearray) -> None:
        try:
            self.functions[fn_id] = self.loads(payload)
        except BaseException as exc:  # kept, and reported by the first call that needs it
            self.functions[fn_id] = _LoadFailure(_failure_info(exc, "define", self))

    def _run_call(self, call_id: int, payload: bytes | bytearray) -> None:
        try:
            self._execute(call_id, payload)
        finally:
            self.local.call_id = 0
        self._send_releases()  # the call's arguments are gone now, and their proxies with them

    def proxy_born(self, ref: int, proxy: Any) -> None:
        with self.proxy_lock:
            self.proxies_alive[ref] = self.proxies_alive.get(ref, 0) + 1
            self.proxies_received[ref] = self.proxies_received.get(ref, 0) + 1
        weakref.finalize(proxy, self.dead_proxies.append, ref)

    def _send_releases(self) -> None:
        if not self.dead_proxies:
            return
        released: dict[str, int] = {}
        with self.proxy_lock:
            while self.dead_proxies:
                ref = self.dead_proxies.popleft()
                self.proxies_alive[ref] -= 1
                if self.proxies_alive[ref] == 0:
                    del self.proxies_alive[ref]
                    released[str(ref)] = self.proxies_received.pop(ref)
        if released:
            self.send(Kind.RELEASE, 0, encode_json(released))

    def _execute(self, call_id: int, payload: bytes | bytearray) -> None:
        self.local.call_id = call_id
        phase = "load"
        try:
            fn_id, args, kwargs = self.loads(payload)
            del payload
            fn = self.functions.get(fn_id)
            if isinstance(fn, _LoadFailure):
                self.send(Kind.FAILURE, call_id, self.dumps(fn.info))
                return
            if fn is None:
                raise LookupError("function %d was never defined on this worker" % fn_id)
            self.send(Kind.STARTED, call_id)  # from here on the call counts as started on B
            phase = "run"
            result = fn(*args, **kwargs)
            _flush_output()
            phase = "dump"
            if type(result) in _PLAIN_RESULTS:
                data = memoryview(pickle.dumps(result, pickle.HIGHEST_PROTOCOL))
            else:
                data = self.dumps(result)
            if data.nbytes > self.max_frame:
                phase = "size"
                raise ValueError(
                    "the result is %d bytes pickled, over the frame limit of %d bytes" % (data.nbytes, self.max_frame)
                )
        except BaseException as exc:
            _flush_output()
            try:
                data = self.dumps(_failure_info(exc, phase, self))
            except BaseException as exc2:  # the failure itself would not pickle
                data = self.dumps(_failure_info(exc2, "dump", self))
            self.send(Kind.FAILURE, call_id, data)
            return
        finally:
            self.local.call_id = 0
        self.send(Kind.RESULT, call_id, data)

    # -- proxies: calls from B to objects that stayed on A -------------------------------
    def proxy_request(
        self, op: str, ref: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self.hand_off_reading()  # the answer must be read by another thread
        req_id = next(self.proxy_ids)
        waiter: list[Any] = [threading.Event(), None, None]
        with self.proxy_lock:
            self.proxy_waiters[req_id] = waiter
        self.send(Kind.PROXY_CALL, req_id, self.dumps((op, ref, name, args, kwargs)))
        while not waiter[0].wait(_PROXY_POLL_S):
            if self.closed.is_set():
                raise ConnectionError("the link to host A closed during a call on a proxied object")
        kind, payload = waiter[1], waiter[2]
        value = self.loads(payload)
        if kind == Kind.PROXY_FAIL:
            raise _rebuild_failure(value, self)
        return value

    def _proxy_failed(self, req_id: int, payload: bytes | bytearray) -> None:
        self._proxy_answer(req_id, payload, Kind.PROXY_FAIL)

    def _proxy_answer(self, req_id: int, payload: bytes | bytearray, kind: int = Kind.PROXY_REPLY) -> None:
        with self.proxy_lock:
            waiter = self.proxy_waiters.pop(req_id, None)
        if waiter is not None:
            waiter[1], waiter[2] = kind, payload
            waiter[0].set()


class _LoadFailure:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _failure_info(exc: BaseException, phase: str, server: _Server) -> dict[str, Any]:
    """What A needs to re-raise: the exception pickled if possible, else its type and text."""
    tb = exc.__traceback__
    if phase == "run" and tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # drop the worker's own frame
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    pickled = None
    try:
        pickled = bytes(server.dumps(exc))
    except BaseException:
        pass
    return {
        "type": type(exc).__qualname__,
        "module": type(exc).__module__,
        "message": str(exc),
        "traceback": text,
        "pickled": pickled,
        "phase": phase,
        # The stage's own exception (never retried) vs wiredprof's (loading, pickling, size).
        "origin": "stage" if phase == "run" else "wiredprof",
        "missing_module": getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None,
    }


def _rebuild_failure(info: dict[str, Any], server: _Server) -> BaseException:
    exc: BaseException | None = None
    if info.get("pickled"):
        try:
            exc = server.loads(info["pickled"])
        except BaseException:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RuntimeError("%s: %s" % (info.get("type"), info.get("message")))
    return exc


def _make_proxy_class(server: _Server) -> type:
    """The stand-in on B for an object that stayed on A; every method call goes back to A."""

    def _method(name: str) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return server.proxy_request("call", object.__getattribute__(self, "_wp_ref"), name, args, kwargs)

        call.__name__ = name
        return call

    class ProxyMethod:
        __slots__ = ("_proxy", "_name")

        def __init__(self, proxy: Any, name: str) -> None:
            self._proxy = proxy  # keeps the proxy, and so the object on A, alive
            self._name = name

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            ref = object.__getattribute__(self._proxy, "_wp_ref")
            return server.proxy_request("call", ref, self._name, args, kwargs)

        def __repr__(self) -> str:
            return "<method %s of an object on host A>" % self._name

    class Proxy:
        __slots__ = ("_wp_ref", "_wp_type", "_wp_methods", "__weakref__")

        def __init__(self, ref: int, type_name: str, methods: frozenset[str]) -> None:
            object.__setattr__(self, "_wp_ref", ref)
            object.__setattr__(self, "_wp_type", type_name)
            object.__setattr__(self, "_wp_methods", methods)

        def __getattr__(self, name: str) -> Any:
            ref = object.__getattribute__(self, "_wp_ref")
            if name in object.__getattribute__(self, "_wp_methods"):
                return ProxyMethod(self, name)
            return server.proxy_request("getattr", ref, name, (), {})

        def __setattr__(self, name: str, value: Any) -> None:
            server.proxy_request("setattr", object.__getattribute__(self, "_wp_ref"), name, (value,), {})

        def __repr__(self) -> str:
            return "<proxy of %s on host A>" % object.__getattribute__(self, "_wp_type")

        def __next__(self) -> Any:
            return server.proxy_request("call", object.__getattribute__(self, "_wp_ref"), "__next__", (), {})

    for dunder in (
        "__enter__",
        "__exit__",
        "__len__",
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__contains__",
        "__call__",
        "__iter__",
    ):
        setattr(Proxy, dunder, _method(dunder))
    Proxy.__name__ = Proxy.__qualname__ = "RemoteObjectProxy"
    return Proxy


class _ProxyAwareUnpickler(pickle.Unpickler):
    def __init__(self, server: _Server, file: Any) -> None:
        super().__init__(file)
        self._server = server

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and pid and pid[0] == "wiredprof.ref":
            proxy_cls = self._server.Proxy
            assert proxy_cls is not None
            proxy = proxy_cls(pid[1], pid[2], frozenset(pid[3]))
            self._server.proxy_born(pid[1], proxy)
            return proxy
        raise pickle.UnpicklingError("unknown persistent id %r" % (pid,))


def _make_pickler_class(cloudpickle: Any, proxy_cls: type) -> type:
    """A cloudpickle Pickler that sends proxies back to A as references, not copies."""

    class ProxyAwarePickler(cloudpickle.Pickler):  # type: ignore[misc, name-defined]
        def persistent_id(self, obj: Any) -> Any:
            if type(obj) is proxy_cls:
                return ("wiredprof.ref", object.__getattribute__(obj, "_wp_ref"))
            return None

    return ProxyAwarePickler


def _cloudpickle_version() -> str | None:
    """B's cloudpickle version without importing it (A may ship its own instead)."""
    try:
        spec = importlib.util.find_spec("cloudpickle")
    except Exception:
        return None
    if spec is None or not spec.origin:
        return None
    try:
        with open(spec.origin, encoding="utf-8") as f:
            for line in f:
                if line.startswith("__version__"):
                    return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "unknown"


def _hello() -> dict[str, Any]:
    uname = os.uname()
    return {
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "cloudpickle": _cloudpickle_version(),
        "platform": "%s %s" % (uname.sysname, uname.release),
        "machine": uname.machine,
        "hostname": uname.nodename,
    }


def serve(rfile: BinaryIO, wfile: BinaryIO) -> None:
    """Run the worker until A closes the channel. Called by the bootstrap on host B."""
    server = _Server(rfile, wfile.fileno())
    try:
        if server.handshake():
            server.run()
    finally:
        _exit(server)


def _say(text: str) -> None:
    """One line on the worker's real stderr (the channel's), which A keeps as its last output."""
    try:
        os.write(2, ("wiredprof worker: %s\n" % text).encode("utf-8", "replace"))
    except OSError:
        pass


def _exit(server: _Server) -> None:
    """A is gone (EOF or CLOSE): end the process, even with calls still running in threads."""
    server.closed.set()
    os._exit(0)
