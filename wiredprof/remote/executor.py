"""`RemoteExecutor`: run Python callables on one SSH host, `concurrent.futures` style.

    from wiredprof.remote import connect
    with connect("B") as b:
        b.call(fn, *args, **kwargs)
        fut = b.submit(fn, x)

The executor owns at most one live `WorkerSession`; if the worker died or the link
dropped, the next call connects again (and ships its callables again, so state kept on B
starts over, which is logged). Reconnects back off exponentially with jitter; after a few
link failures in a row a circuit breaker makes calls fail at once (`CircuitOpenError`,
a call that never started) for a cool-down, instead of each paying a connect attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

from wiredprof.errors import CircuitOpenError, ConnectError, link_failure
from wiredprof.remote.bootstrap import WorkerHello, start_worker
from wiredprof.remote.breaker import Breaker
from wiredprof.remote.calls import CallConveniences
from wiredprof.remote.session import OutputSink, WorkerSession
from wiredprof.remote.spec import HostSpec
from wiredprof.remote.statefulness import stateful_reasons
from wiredprof.remote.transport import PassphrasePrompt, open_transport

__all__ = ["Executor", "HostHello", "RemoteExecutor", "ConnectTimings"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class HostHello(Protocol):
    """What a connected host said about itself (`WorkerHello` over SSH, `DaskHello` for a cluster)."""

    @property
    def python(self) -> str: ...

    @property
    def hostname(self) -> str: ...


@runtime_checkable
class Executor(Protocol):
    """What the offload runtime needs from a place that runs a stage: `RemoteExecutor` (SSH) or
    `DaskExecutor` (wiredprof.cluster)."""

    @property
    def host(self) -> str: ...

    @property
    def hello(self) -> HostHello: ...

    def connect(self) -> Executor: ...

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]: ...

    def submit_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Future[T]: ...

    def close(self) -> None: ...


class ConnectTimings:
    """Seconds spent in the last connect: SSH (TCP, keys, auth) and worker bootstrap."""

    def __init__(self, ssh_s: float = 0.0, worker_s: float = 0.0) -> None:
        self.ssh_s = ssh_s
        self.worker_s = worker_s

    def __repr__(self) -> str:
        return f"ConnectTimings(ssh_s={self.ssh_s:.3f}, worker_s={self.worker_s:.3f})"


class RemoteExecutor(CallConveniences):
    """Runs callables on the host described by `spec`, over one SSH connection."""

    def __init__(
        self,
        spec: HostSpec,
        *,
        accept_new: bool = False,
        call_timeout: float | None = None,
        output: OutputSink | None = None,
        prompt: PassphrasePrompt | None = None,
        max_threads: int = 32,
        restart_on_timeout: bool = False,
    ) -> None:
        """`restart_on_timeout`: end the worker when a call times out (other pending calls fail
        with `WorkerLostError`, the next call reconnects), instead of leaving the call running."""
        self.spec = spec
        self.restart_on_timeout = restart_on_timeout
        self.accept_new = accept_new
        self.call_timeout = call_timeout
        self.output = output
        self.prompt = prompt
        self.max_threads = max_threads
        self.timings = ConnectTimings()
        self.connects = 0
        self._session: WorkerSession | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.breaker = Breaker()

    @property
    def host(self) -> str:
        """The host's name."""
        return self.spec.name

    @property
    def hello(self) -> WorkerHello:
        """What the current worker reported at connect (connects if needed)."""
        return self.session().hello

    def session(self) -> WorkerSession:
        """The live session, connecting (again) when there is none."""
        session = self._session
        if session is not None and session.alive and not self._closed:
            return session  # the warm path, without the lock (a session ending now fails its calls anyway)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the executor for {self.host} is closed")
            session = self._session
            if session is not None and session.alive:
                return session
            if session is not None:
                self._session = None
                session.close()
                self.breaker.failure()
                log.warning(
                    "reconnecting to %s: callables are shipped again, so state they kept there starts over",
                    self.host,
                )
            wait = self.breaker.wait_s()
            if wait > 0 and self.breaker.failures >= self.breaker.threshold:
                raise CircuitOpenError(
                    f"host {self.host}: {self.breaker.failures} link failures in a row; calls skip it "
                    f"for {wait:.1f} s more, then one connect is tried"
                )
            if wait > 0:
                time.sleep(wait)  # backoff, bounded by the breaker's cap
            try:
                self._session = self._connect()
            except ConnectError:
                self.breaker.failure()
                raise
            return self._session

    def _connect(self) -> WorkerSession:
        start = time.perf_counter()
        transport = open_transport(self.spec, accept_new=self.accept_new, prompt=self.prompt)
        ssh_done = time.perf_counter()
        try:
            channel, frames, hello = start_worker(
                transport,
                self.spec.name,
                self.spec.python,
                timeout_s=self.spec.connect_timeout_s,
                max_threads=self.max_threads,
                max_frame=self.spec.max_frame_bytes,
                dead_after_s=self.spec.dead_after_s,
            )
        except BaseException:
            transport.close()
            raise
        self.timings = ConnectTimings(ssh_done - start, time.perf_counter() - ssh_done)
        self.connects += 1
        log.info("connected to %s (%s) in %s", self.host, self.spec.address, self.timings)
        return WorkerSession(
            self.spec.name,
            transport,
            channel,
            frames,
            hello,
            output=self.output,
            restart_on_timeout=self.restart_on_timeout,
            dead_after_s=self.spec.dead_after_s,
        )

    def connect(self) -> RemoteExecutor:
        """Connect now rather than at the first call; returns self."""
        self.session()
        return self

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn(*args, **kwargs)` on the host; the executor's `call_timeout` applies."""
        return self._watched(self.session().submit(fn, args, kwargs, self.call_timeout))

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the host and return its result (or raise its exception).

        The calling thread reads the answer itself when no other call is in flight."""
        return self._call(fn, args, kwargs, self.call_timeout)

    def call_with_timeout(self, timeout: float, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`call` that raises `CallTimeoutError` when the host takes longer than `timeout` seconds."""
        return self._call(fn, args, kwargs, timeout)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> T:
        session = self.session()
        try:
            result: T = session.call(fn, args, kwargs, timeout)
        except BaseException as exc:
            self._answered(exc)
            raise
        self._answered(None)
        return result

    def _watched(self, future: Future[T]) -> Future[T]:
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: Future[Any]) -> None:
        if self.breaker.failures:
            self._answered(future.exception())

    def _answered(self, exc: BaseException | None) -> None:
        # Any answer from B (a result or the stage's own exception) means the host is back.
        if not self.breaker.failures:
            return  # the common case, without a lock
        if exc is None or link_failure(exc) is None:
            self.breaker.success()

    def submit_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Future[T]:
        """Like `submit`, with its own timeout (seconds) for this call.

        `idempotent` changes nothing here: a call is sent to B once, and whether it may run
        again after a link failure is the offload runtime's decision (B acknowledges starts).
        """
        return self._watched(
            self.session().submit(fn, args, kwargs or {}, timeout if timeout is not None else self.call_timeout)
        )

    @staticmethod
    def stateful_reasons(fn: Callable[..., Any]) -> tuple[str, ...]:
        """Why `fn` keeps state between calls (that state would live on the host)."""
        return stateful_reasons(fn)

    def close(self) -> None:
        """End the worker and the connection."""
        with self._lock:
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> RemoteExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteExecutor {self.host} {self.spec.address}>"
