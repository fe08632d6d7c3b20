"""`DaskExecutor`: run stage calls on a Dask cluster, behind the `Executor` protocol of the SSH engine.

    with DaskExecutor(DaskSpec("cluster", "tcp://scheduler:8786")) as ex:
        ex.call(fn, *args)                    # the result, or the stage's own exception
        fut = ex.submit_call(fn, args, kwargs, timeout=60)

Dask ships the call (wiredprof pickles it first, with the same rules as over SSH: the
user's code by value, objects that cannot travel kept here behind proxies), runs it in a
worker thread and sends the outcome back. Failures stay apart:
- the stage's own exception comes back as the call's outcome, with its type and the
  worker's traceback, marked `wiredprof_origin = "stage"`: never a link failure;
- everything else is the cluster's or the link's (`WorkerLostError`, `CallTimeoutError`,
  `ConnectError`): a worker lost mid-call, the scheduler gone, a timeout.

At most once: Dask re-runs a task whose worker died on another worker (up to the
scheduler's `allowed-failures`, which a client cannot change). Unless the call is
`idempotent`, the task asks this side for permission before the stage starts and only the
first attempt gets it; a second attempt is refused before the stage runs, and the call
fails as a worker lost after the start (`started = True`). A watchdog also fails a call at
once when the worker it started on leaves the cluster, so no call waits for a task that
Dask cannot place.

Stateful callables (`stateful_reasons`) are pinned to one worker (`workers=[w]`,
`allow_other_workers=False`) so their state stays in one place, as on one SSH host; if that
worker leaves, the next call ships the callable again to another worker (state starts
over, which is logged).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import cloudpickle

from wiredprof.cluster.channel import TaskChannel
from wiredprof.cluster.spec import DaskSpec, import_distributed
from wiredprof.cluster.task import run_call
from wiredprof.errors import (
    CallTimeoutError,
    ConnectError,
    PythonMismatchError,
    RemoteError,
    WiredprofError,
    WorkerLostError,
)
from wiredprof.remote.calls import CallConveniences
from wiredprof.remote.executor import ConnectTimings
from wiredprof.remote.serialize import (
    LocalObjects,
    dump_call,
    dump_function,
    function_name,
    load_value,
    register_project_modules,
)
from wiredprof.remote.session import rebuild_exception, with_source_lines
from wiredprof.remote.statefulness import stateful_reasons

__all__ = ["DaskExecutor", "DaskHello", "CallRecord", "ByValue"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_WATCH_S = 0.5
_MAX_RECORDS = 1000


@dataclass(frozen=True)
class DaskHello:
    """What `offload` says about the cluster once connected (like the SSH worker's hello)."""

    python: str
    hostname: str
    executable: str
    workers: int
    cloudpickle_remote: str | None = None
    cloudpickle_shipped: bool = False  # Dask workers have their own cloudpickle


@dataclass(frozen=True)
class CallRecord:
    """Where and how long one call ran on the cluster (for reports: lanes per worker)."""

    name: str
    worker: str
    wall_s: float
    cpu_s: float
    ok: bool


@dataclass
class _Shipped:
    fn: Any  # kept alive, so its id() stays its own
    token: str
    blob: bytes  # the pickled callable
    pinned: str | None = None


@dataclass
class _Call:
    name: str
    future: Future[Any]
    deadline: float | None
    shipped: _Shipped
    at_most_once: bool
    dask_future: Any = None
    started_on: str | None = None
    attempts: int = 0
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class ByValue:
    """A function that a Dask worker gets by value, whatever Dask's pickler decides.

    Dask pickles a task with the standard pickler unless it sees `__main__` or a module
    registered by value at the top; wiredprof's task code would then travel by reference
    and a worker without wiredprof could not load it. This reduces to `cloudpickle.loads`
    of the function pickled by value, so the worker needs only cloudpickle.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        register_project_modules()
        self.fn = fn
        self.blob = cloudpickle.dumps(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (cloudpickle.loads, (self.blob,))


def _link_error(cls: type[WiredprofError], message: str, started: bool | None) -> WiredprofError:
    """A link-class error that says whether the stage may have started (see wiredprof.errors)."""
    exc = cls(message)
    setattr(exc, "started", started)
    return exc


class DaskExecutor(CallConveniences):
    """Runs callables on the Dask cluster described by `spec`, through one `distributed.Client`."""

    def __init__(self, spec: DaskSpec, *, call_timeout: float | None = None) -> None:
        self.spec = spec
        self.call_timeout = call_timeout
        self.session = uuid.uuid4().hex[:16]
        self.objects = LocalObjects()
        self.records: list[CallRecord] = []
        self.connect_s = 0.0
        self.timings = ConnectTimings()  # ssh_s: connecting the client (no worker to start)
        self.connects = 0
        self._client: Any = None
        self._channel: TaskChannel | None = None
        self._hello: DaskHello | None = None
        self._lock = threading.RLock()
        self._calls: dict[str, _Call] = {}
        self._shipped: dict[tuple[Any, ...], _Shipped] = {}
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._run_call: ByValue | None = None

    # -- the Executor protocol and RemoteExecutor's conveniences ---------------------------
    @property
    def host(self) -> str:
        """The host's name in the inventory."""
        return self.spec.name

    @property
    def client(self) -> Any:
        """The live `distributed.Client` (connects if needed)."""
        return self._connected()

    @property
    def hello(self) -> DaskHello:
        """The cluster's Python, scheduler and worker count (connects if needed)."""
        self._connected()
        assert self._hello is not None
        return self._hello

    def connect(self) -> DaskExecutor:
        """Connect now rather than at the first call; returns self."""
        self._connected()
        return self

    def submit_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Future[T]:
        """Run `fn(*args, **kwargs)` on a worker, with its own timeout (seconds) for this call.

        `idempotent`: let Dask re-run the task after a worker died (at least once instead
        of at most once).
        """
        client = self._connected()
        name = function_name(fn)
        shipped = self._ship(client, fn)
        call_blob = bytes(dump_call(fn, 0, args, kwargs or {}, self.objects))
        timeout = timeout if timeout is not None else self.call_timeout
        call_id = uuid.uuid4().hex
        out: Future[T] = Future()
        out.set_running_or_notify_cancel()
        call = _Call(name, out, time.monotonic() + timeout if timeout else None, shipped, not idempotent)
        with self._lock:
            self._calls[call_id] = call
        extra: dict[str, Any] = {}
        if shipped.pinned:
            extra = {"workers": [shipped.pinned], "allow_other_workers": False}
        try:
            if self._run_call is None:
                self._run_call = ByValue(run_call)
            call.dask_future = client.submit(
                self._run_call, self.session, call_id, shipped.token, shipped.blob, call_blob, not idempotent,
                key=f"wiredprof-{fn.__name__ if hasattr(fn, '__name__') else 'call'}-{call_id}",
                pure=False, retries=0, **extra,
            )
        except Exception as exc:  # noqa: BLE001 - the scheduler is gone
            self._fail(call_id, _link_error(WorkerLostError, f"cannot submit {name} to {self.host}: {exc}", False))
            return out
        call.dask_future.add_done_callback(functools.partial(self._settled, call_id))
        return out

    @staticmethod
    def stateful_reasons(fn: Callable[..., Any]) -> tuple[str, ...]:
        """Why `fn` keeps state between calls (it is then pinned to one worker)."""
        return stateful_reasons(fn)

    # -- connecting ------------------------------------------------------------------------
    def _connected(self) -> Any:
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError(f"the executor for {self.host} is closed")
            if self._client is not None and self._client.status == "running":
                return self._client
            if self._client is not None:
                self._drop_client()
                log.warning("reconnecting to %s: callables are shipped again, so state they kept there starts over",
                            self.host)
            self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        distributed = import_distributed(self.host)
        security = self.spec.security()
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # Dask's multi-line version table: the Python that matters is checked below, in
                # one line, and `hosts check` lists the package versions.
                warnings.simplefilter("ignore", distributed.versions.VersionMismatchWarning)
                client = distributed.Client(
                    self.spec.scheduler, security=security, timeout=self.spec.connect_timeout_s,
                    set_as_default=False,
                )
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, or a TLS handshake refused
            raise ConnectError(f"cannot reach the Dask scheduler of {self.host} at {self.spec.scheduler}: {exc}") \
                from None
        try:
            info = client.scheduler_info()
            versions = client.get_versions(check=False)
        except Exception as exc:  # noqa: BLE001
            client.close()
            raise ConnectError(f"the Dask scheduler of {self.host} does not answer: {exc}") from None
        self.connect_s = time.perf_counter() - start
        self.timings = ConnectTimings(self.connect_s, 0.0)
        self.connects += 1
        self._hello = _hello(self.spec.scheduler, versions, len(info.get("workers", {})))
        if not self._hello.workers:
            client.close()
            raise ConnectError(f"the Dask cluster {self.host} ({self.spec.scheduler}) has no worker: start one "
                               "(`dask worker ADDRESS`), then try again")
        here = "%d.%d" % sys.version_info[:2]
        if self._hello.python.split(".")[:2] != here.split("."):
            client.close()
            raise PythonMismatchError(
                f"host {self.host}: the Dask workers run Python {self._hello.python}, this side {here}; "
                "pickled stages need the same major.minor (use a cluster, or a venv here, of the same Python)"
            )
        self._channel = TaskChannel(client, self.session, self.objects, self._gate, self.host)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name=f"wiredprof-dask-watch-{self.host}",
                                              daemon=True)
            self._watchdog.start()
        log.info("connected to %s (%s) in %.3f s", self.host, self.spec.scheduler, self.connect_s)
        return client

    def _drop_client(self) -> None:
        channel, self._channel = self._channel, None
        client, self._client = self._client, None
        self._shipped.clear()
        if channel is not None:
            channel.close()
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:  # noqa: BLE001
                log.debug("closing the Dask client failed", exc_info=True)

    # -- shipping callables ------------------------------------------------------------------
    def _ship(self, client: Any, fn: Callable[..., Any]) -> _Shipped:
        key = ("callable", id(fn))
        with self._lock:
            shipped = self._shipped.get(key)
            if shipped is not None and shipped.fn is fn:
                return shipped
        blob = bytes(dump_function(fn, self.objects))
        pinned = None
        if stateful_reasons(fn):
            pinned = self._pick_worker(client)
            log.info("%s keeps state: pinned to worker %s of %s", function_name(fn), pinned, self.host)
        # Sent with every task (a worker unpickles it once and keeps it): data scattered to one
        # worker would be lost with that worker, and with it every task that needs it.
        shipped = _Shipped(fn, uuid.uuid4().hex, blob, pinned)
        with self._lock:
            self._shipped[key] = shipped
        return shipped

    def _pick_worker(self, client: Any) -> str:
        workers: list[str] = sorted(client.scheduler_info().get("workers", {}))
        if not workers:
            raise _link_error(ConnectError, f"the Dask cluster {self.host} has no worker", False)
        with self._lock:
            load = {w: sum(1 for s in self._shipped.values() if s.pinned == w) for w in workers}
        return min(workers, key=lambda w: (load[w], w))

    # -- calls settling ------------------------------------------------------------------------
    def _gate(self, call_id: str, worker: str) -> bool:
        """A task asks to start: only the first attempt of a live call may."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None or call.done:
                return False
            call.attempts += 1
            if call.started_on is None:
                call.started_on = worker
                return True
            first = call.started_on
        self._fail(call_id, _link_error(
            WorkerLostError,
            f"{call.name} on {self.host}: worker {first} was lost after the call started there, and Dask "
            f"started it again on {worker}; refused (at most once: set idempotent = true to allow it)",
            True,
        ))
        return False

    def _settled(self, call_id: str, dask_future: Any) -> None:
        with self._lock:
            call = self._calls.get(call_id)
        if call is None or call.done:
            return
        status = dask_future.status
        if status == "finished":
            try:
                self._finish(call_id, call, dask_future.result())
            except Exception as exc:  # noqa: BLE001
                self._fail(call_id, RemoteError(f"the reply of {call.name} from {self.host} cannot be loaded: {exc!r}",
                                                host=self.host))
            return
        if status == "cancelled":
            error: BaseException = _link_error(WorkerLostError, f"{call.name} on {self.host} was cancelled",
                                               call.started_on is not None or None)
        else:
            error = self._dask_failure(call, dask_future.exception())
        self._fail(call_id, error)

    def _dask_failure(self, call: _Call, exc: BaseException | None) -> BaseException:
        """What Dask itself raised (never the stage's exception, which comes back as data)."""
        kind = type(exc).__name__
        started = True if call.started_on else None
        if kind == "KilledWorker":
            return _link_error(WorkerLostError, f"{call.name} on {self.host}: Dask gave up on it after workers "
                                                f"died running it ({exc})", started)
        lost = ("CommClosedError", "CancelledError", "FutureCancelledError")
        if isinstance(exc, (OSError, TimeoutError)) or kind in lost:
            return _link_error(WorkerLostError, f"{call.name} on {self.host}: {kind}: {exc}", started)
        return RemoteError(f"{call.name} could not run on {self.host}: {kind}: {exc}", remote_type=kind,
                           host=self.host)

    def _finish(self, call_id: str, call: _Call, data: bytes) -> None:
        outcome, value, meta = load_value(data, self.objects)
        worker, wall = str(meta.get("worker", "")), float(meta.get("wall_s", 0.0))
        self._record(CallRecord(call.name, worker, wall, float(meta.get("cpu_s", 0.0)), outcome == "ok"))
        if outcome != "refused":  # read by the offload runtime (profiling/workercalls.py)
            call.future.worker = worker  # type: ignore[attr-defined]
            call.future.remote_s = wall  # type: ignore[attr-defined]
        if outcome == "ok":
            with self._lock:
                call.done = True
                self._calls.pop(call_id, None)
            call.future.set_result(value)
        elif outcome == "refused":
            self._fail(call_id, _link_error(WorkerLostError, f"{call.name} on {self.host}: not started: {value}",
                                            True))
        else:
            self._fail(call_id, self._rebuild(value, call.name, str(meta.get("worker", ""))))

    def _rebuild(self, info: dict[str, Any], name: str, worker: str) -> BaseException:
        """The stage's own exception, re-created here with the worker's traceback (the source lines
        of code shipped by value filled in from this side, as for SSH)."""
        tb = with_source_lines(str(info.get("traceback", "")))
        return rebuild_exception(info, self.objects, tb, host=self.host,
                                 where=f"{self.host} ({worker})", failed=f"{name} failed on {self.host} ({worker})",
                                 stage=True)

    def _fail(self, call_id: str, error: BaseException) -> None:
        with self._lock:
            call = self._calls.pop(call_id, None)
            if call is None or call.done:
                return
            call.done = True
        if call.dask_future is not None and not call.dask_future.done():
            try:
                call.dask_future.cancel()
            except Exception:  # noqa: BLE001
                log.debug("cancelling a Dask task failed", exc_info=True)
        if not call.future.done():
            call.future.set_exception(error)

    def _record(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)
            del self.records[:-_MAX_RECORDS]

    # -- the watchdog: timeouts, workers that left, a lost scheduler ---------------------------
    def _watch(self) -> None:
        while not self._closed.wait(_WATCH_S):
            try:
                self._check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive a bad moment
                log.debug("dask watchdog check failed", exc_info=True)

    def _check(self) -> None:
        with self._lock:
            calls = [(cid, c) for cid, c in self._calls.items() if not c.done]
            client = self._client
        if not calls:
            return
        now = time.monotonic()
        for cid, c in calls:
            if c.deadline is not None and now > c.deadline:
                self._fail(cid, _link_error(CallTimeoutError, f"{c.name} on {self.host} did not finish within its "
                                                              "timeout", True if c.started_on else None))
        if client is None or client.status != "running":
            for cid, c in calls:
                self._fail(cid, _link_error(WorkerLostError, f"{c.name}: the link to the Dask scheduler of "
                                                             f"{self.host} was lost", True if c.started_on else None))
            return
        workers = set(client.scheduler_info().get("workers", {}))
        for cid, c in calls:
            if c.started_on is not None and c.started_on not in workers:
                self._fail(cid, _link_error(WorkerLostError, f"{c.name} on {self.host}: worker {c.started_on} "
                                                             "left the cluster while running it", True))
            elif c.started_on is None and c.shipped.pinned and c.shipped.pinned not in workers:
                self._unpin(c.shipped)
                self._fail(cid, _link_error(WorkerLostError, f"{c.name} on {self.host}: its worker "
                                                             f"{c.shipped.pinned} left the cluster", False))

    def _unpin(self, shipped: _Shipped) -> None:
        with self._lock:
            for key, s in list(self._shipped.items()):
                if s is shipped:
                    del self._shipped[key]
        log.warning("%s: the worker %s that kept a stateful stage's state left; the next call starts over on "
                    "another worker", self.host, shipped.pinned)

    def close(self) -> None:
        """Fail what is still pending, close the client and stop serving tasks."""
        self._closed.set()
        with self._lock:
            pending = list(self._calls)
        for cid in pending:
            self._fail(cid, _link_error(WorkerLostError, f"the executor for {self.host} was closed", None))
        with self._lock:
            self._drop_client()
        if self._watchdog is not None:
            self._watchdog.join(_WATCH_S * 4)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DaskExecutor {self.host} {self.spec.scheduler}>"


def _hello(scheduler: str, versions: dict[str, Any], workers: int) -> DaskHello:
    """From `Client.get_versions`: a worker's Python and cloudpickle (the scheduler's without workers)."""
    side = next(iter(versions.get("workers", {}).values()), None) or versions["scheduler"]
    python = str(side["host"].get("python", "?")).split(".final")[0]
    return DaskHello(python, scheduler, "a Dask worker's python", workers, side["packages"].get("cloudpickle"))
