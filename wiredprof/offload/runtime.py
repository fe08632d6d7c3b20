"""Applying offload decisions at run time: a stage's callable swapped for a remote one.

Only the stage's own user callable moves (granularity: a stage, never a pipeline or the
service). For wiredflow, a shallow copy of the stage object gets a `function_to_launch`
that calls the original function on the host, and wiredflow's own stage method runs
on that copy: arguments are built exactly as locally (`relevant_info`, `db_connectors`,
`pipeline_name`, ...), and `db_connectors` stay on A behind a proxy. For the plain API,
the decorated function is swapped.

Failures: an exception raised by the stage's own code on the host is the stage's result
and surfaces at once, with its original type and the remote traceback (wiredflow then
reacts as to any stage failure): never retried, never run locally, whatever its type
(`FileNotFoundError` included). Only wiredprof's own link failures (`LinkError`: worker
lost, link lost or silent, bad frame, no connection, timeout) follow the policy: retried
`retries` times, then the stage fails or, with `on_failure = "local"`, runs here.

At most once: a call is re-run (on B or here) only when B certainly never started it
(B acknowledges each start), unless the entry says `idempotent = true`. Every retry
(before / after a start), fallback, timeout and link loss is counted in the profile.
"""
from __future__ import annotations

import copy
import functools
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wiredprof.adapters import StageSwap, set_stage_swap, stage_swap
from wiredprof.offload.entries import OffloadEntry
from wiredprof.errors import CallTimeoutError, CircuitOpenError, LinkError, UsageError, link_failure
from wiredprof.profiling import workercalls
from wiredprof.profiling.callbacks import offloaded_call
from wiredprof.profiling.recorder import Recorder

if TYPE_CHECKING:  # the protocol's module imports paramiko: not at run time
    from wiredprof.remote.executor import Executor

__all__ = ["OffloadRuntime", "RemoteStageFunction", "LINK_FAILURES", "EVENTS"]

log = logging.getLogger(__name__)

# Failures of the host or the link, never of the stage's own code: wiredprof's own classes only.
LINK_FAILURES: tuple[type[BaseException], ...] = (LinkError,)
# What the profile counts per offloaded stage.
EVENTS = ("retries", "retries_after_start", "fallbacks", "timeouts", "link_losses")
# How long past the run's deadline a remote call may still be waited for.
_RUN_GRACE_MIN_S = 10.0


def remote_grace_s(duration_s: float | None) -> float:
    """Seconds past the run's deadline that a remote call is still waited for (then: a timeout)."""
    return max(_RUN_GRACE_MIN_S, 0.25 * (duration_s or 0.0))


@dataclass
class _Counters:
    retries: int = 0  # re-sent after a link failure, B had not started it
    retries_after_start: int = 0  # re-sent although B had (maybe) started it: idempotent only
    fallbacks: int = 0  # run here instead
    timeouts: int = 0
    link_losses: int = 0  # any other link failure: worker or link lost, silent, bad frame, no connection


class RemoteStageFunction:
    """Stands in for a stage's user callable: calls it on the offload host."""

    def __init__(self, runtime: OffloadRuntime, entry: OffloadEntry, fn: Callable[..., Any]) -> None:
        self.runtime = runtime
        self.entry = entry
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry = self.entry
        for attempt in range(1 + entry.retries):
            try:
                with offloaded_call(entry.stage):  # B's call-backs to A count for this stage
                    return self.runtime.call(entry, self.fn, args, kwargs)
            except BaseException as exc:
                link = link_failure(exc)
                if link is None:
                    raise  # the stage's own exception (or bad input): at once, never re-run
                self.runtime.count(entry.stage, "timeouts" if isinstance(link, CallTimeoutError) else "link_losses")
                if link.started is not False and not entry.idempotent:
                    log.warning("wiredprof: %s on %s failed (%s); not run again: it may have run there "
                                "(set idempotent = true in its [offload] entry to allow it)", entry.stage, entry.host, exc)
                    raise
                if attempt < entry.retries and not isinstance(link, CircuitOpenError):
                    self.runtime.count(entry.stage, "retries" if link.started is False else "retries_after_start")
                    log.warning("wiredprof: %s on %s failed (%s); retry %d of %d",
                                entry.stage, entry.host, exc, attempt + 1, entry.retries)
                    continue
                if entry.on_failure == "local":
                    self.runtime.count(entry.stage, "fallbacks")
                    log.warning("wiredprof: %s on %s failed (%s); running it locally", entry.stage, entry.host, exc)
                    return self.fn(*args, **kwargs)
                raise
        raise AssertionError("unreachable")  # pragma: no cover


class OffloadRuntime:
    """The offloads of one run: hooks into the adapters and one executor per host and process."""

    def __init__(self, entries: dict[str, OffloadEntry], connect: Callable[[str], Executor]) -> None:
        self.entries = entries
        self._connect = connect
        self._executors: dict[tuple[int, str], Executor] = {}
        self._lock = threading.Lock()
        self.counters: dict[str, _Counters] = {name: _Counters() for name in entries}
        self.rec: Recorder | None = None
        self._remotes: dict[tuple[str, int], RemoteStageFunction] = {}
        self._replaced: StageSwap | None = None  # the swap `install` replaced, back at `uninstall`

    def call(self, entry: OffloadEntry, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One attempt of `fn` on the entry's host, bounded by its timeout and the run's end."""
        rec = self.rec
        start = rec.clock() if rec is not None else 0.0
        future = self.executor(entry.host).submit_call(fn, args, kwargs, timeout=entry.timeout_s,
                                                       idempotent=entry.idempotent)
        deadline = self.deadline
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            raise CallTimeoutError(
                f"{entry.stage} on {entry.host} was still running when the run's time was up", started=None
            ) from None
        finally:
            worker = getattr(future, "worker", "")  # set by executors of several workers (Dask)
            if rec is not None and worker:
                workercalls.note_call(rec, entry.stage, worker, start, rec.clock() - start,
                                      float(getattr(future, "remote_s", 0.0)))

    def for_spawned_process(self) -> tuple[bytes, bytes]:
        """This plan for a spawned process of the run: (entries, connect), each pickled by reference.

        `connect` must be importable there (a module-level callable): plain pickle, not
        cloudpickle, whose by-value registrations would drag this process's state along.
        """
        return pickle.dumps(self.entries), pickle.dumps(self._connect)

    @classmethod
    def from_spawned(cls, entries: bytes, connect: bytes) -> OffloadRuntime:
        """The run's offloads in a spawned process (its executors connect from there, lazily)."""
        return cls(pickle.loads(entries), pickle.loads(connect))

    # -- executors: one per (process, host), made lazily so forked pipelines get their own
    def executor(self, host: str) -> Executor:
        key = (os.getpid(), host)
        ex = self._executors.get(key)
        if ex is None:
            with self._lock:
                ex = self._executors.get(key)
                if ex is None:
                    ex = self._executors[key] = self._connect(host)
        return ex

    def count(self, stage: str, what: str) -> None:
        c = self.counters.setdefault(stage, _Counters())
        setattr(c, what, getattr(c, what) + 1)
        rec = self.rec
        if rec is not None and what in EVENTS:
            pipeline, _, name = stage.partition(".")
            acc = rec.stages.get((pipeline, name))
            if acc is not None:
                rec.count_event(acc, what)

    # -- hooks ------------------------------------------------------------------------------
    def install(self, rec: Recorder | None = None) -> None:
        """Become the adapters' `StageSwap` (the offloaded stages' callables run on their hosts); say where they run."""
        self.rec = rec
        if rec is not None:
            workercalls.install(rec)
            for name, entry in self.entries.items():
                rec.stage_hosts[name] = entry.host
        self._replaced = set_stage_swap(self)

    @property
    def deadline(self) -> float | None:
        """CLOCK_MONOTONIC: no call is waited for past this (the run's deadline, known once the flow
        started, plus a grace). Same clock in every process: `run`/`analyze` never wait on B far past --duration."""
        from wiredprof.profiling.control import current_control

        control = current_control()
        if control is None or control.deadline is None:
            return None
        return control.deadline + remote_grace_s(control.duration_s)

    def uninstall(self) -> None:
        """The adapters stop asking this runtime (the swap it replaced, if any, is back)."""
        if stage_swap() is self:
            set_stage_swap(self._replaced)
        self._replaced = None

    def close(self) -> None:
        """Close the executors this process opened."""
        with self._lock:
            mine = [k for k in self._executors if k[0] == os.getpid()]
            executors = [self._executors.pop(k) for k in mine]
        for ex in executors:
            try:
                ex.close()
            except Exception:
                log.debug("closing an executor failed", exc_info=True)

    # -- StageSwap (wiredprof.adapters): what the adapters ask at a stage's call ------------
    def wiredflow_stage(self, ref: Any, stage: Any, target: Callable[..., Any]) -> Callable[..., Any] | None:
        """A copy of wiredflow stage `stage` whose function runs on the host, if it is offloaded."""
        entry = self.entries.get(f"{ref.pipeline}.{ref.stage}")
        if entry is None:
            return None
        fn = getattr(stage, "function_to_launch", None)
        if fn is None or not isinstance(target, functools.partial):
            raise UsageError(
                f"{entry.stage} is a built-in wiredflow stage ({type(stage).__name__}); only stages built "
                "from your own callables can be offloaded"
            )
        clone = copy.copy(stage)
        clone.function_to_launch = self._remote(entry, fn)
        return functools.partial(target.func, clone)

    def plain_stage(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
        """A stand-in for `fn` that runs it on the host, if stage `name` is offloaded."""
        entry = self.entries.get(name)
        return self._remote(entry, fn) if entry is not None else None

    def _remote(self, entry: OffloadEntry, fn: Callable[..., Any]) -> RemoteStageFunction:
        # One stand-in per function, so a stateful callable is shipped once and keeps its state on the host.
        key = (entry.stage, id(fn))
        rf = self._remotes.get(key)
        if rf is None or rf.fn is not fn:
            rf = self._remotes[key] = RemoteStageFunction(self, entry, fn)
        return rf
