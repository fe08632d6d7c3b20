"""Applying offload decisions at run time: a stage's callable swapped for a remote one.

Only the stage's own user callable moves (granularity: a stage, never a pipeline or the
service). For wiredflow, a shallow copy of the stage object gets a `function_to_launch`
that calls the original function on the host, and wiredflow's own stage method runs
on that copy: arguments are built exactly as locally (`relevant_info`, `db_connectors`,
`pipeline_name`, ...), and `db_connectors` stay on A behind a proxy. For the plain API,
the decorated function is swapped.

Failures: an exception raised by the stage's own code on the host is the stage's result
and surfaces at once, with its original type (wiredflow then reacts as to any stage
failure). A failure of the host or the link (worker died, connection lost, timeout) is
retried `retries` times, then either fails the stage or, with `on_failure = "local"`,
runs it here. Every retry and fallback is counted in the profile.
"""
from __future__ import annotations

import copy
import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wiredprof.adapters import plain as plain_adapter
from wiredprof.adapters import wiredflow as wiredflow_adapter
from wiredprof.config import OffloadEntry
from wiredprof.errors import CallTimeoutError, ConnectError, UsageError, WorkerLostError
from wiredprof.profiling.callbacks import offloaded_call
from wiredprof.profiling.recorder import Recorder

__all__ = ["OffloadRuntime", "RemoteStageFunction", "LINK_FAILURES"]

log = logging.getLogger(__name__)

# Failures of the host or the link, never of the stage's own code.
LINK_FAILURES: tuple[type[BaseException], ...] = (WorkerLostError, ConnectError, CallTimeoutError, EOFError, OSError)


@dataclass
class _Counters:
    retries: int = 0
    fallbacks: int = 0
    link_failures: int = 0


class RemoteStageFunction:
    """Stands in for a stage's user callable: calls it on the offload host."""

    def __init__(self, runtime: OffloadRuntime, entry: OffloadEntry, fn: Callable[..., Any]) -> None:
        self.runtime = runtime
        self.entry = entry
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry = self.entry
        attempts = 1 + entry.retries
        for attempt in range(attempts):
            try:
                executor = self.runtime.executor(entry.host)
                with offloaded_call(entry.stage):  # B's call-backs to A count for this stage
                    return executor.call_with_timeout(entry.timeout_s, self.fn, *args, **kwargs) \
                        if entry.timeout_s else executor.call(self.fn, *args, **kwargs)
            except LINK_FAILURES as exc:
                self.runtime.count(entry.stage, "link_failures")
                if attempt + 1 < attempts:
                    self.runtime.count(entry.stage, "retries")
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

    def __init__(self, entries: dict[str, OffloadEntry], connect: Callable[[str], Any]) -> None:
        self.entries = entries
        self._connect = connect
        self._executors: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()
        self.counters: dict[str, _Counters] = {name: _Counters() for name in entries}
        self.rec: Recorder | None = None
        self._remotes: dict[tuple[str, int], RemoteStageFunction] = {}

    # -- executors: one per (process, host), made lazily so forked pipelines get their own
    def executor(self, host: str) -> Any:
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
        if rec is not None and what in ("retries", "fallbacks"):
            pipeline, _, name = stage.partition(".")
            acc = rec.stages.get((pipeline, name))
            if acc is not None:
                rec.count_event(acc, what)

    # -- hooks ------------------------------------------------------------------------------
    def install(self, rec: Recorder | None = None) -> None:
        """Swap the offloaded stages' callables in both adapters; say where they run."""
        self.rec = rec
        if rec is not None:
            for name, entry in self.entries.items():
                rec.stage_hosts[name] = entry.host
        wiredflow_adapter.method_hooks.append(self._wiredflow_hook)
        plain_adapter.callable_hooks.append(self._plain_hook)

    def uninstall(self) -> None:
        if self._wiredflow_hook in wiredflow_adapter.method_hooks:
            wiredflow_adapter.method_hooks.remove(self._wiredflow_hook)
        if self._plain_hook in plain_adapter.callable_hooks:
            plain_adapter.callable_hooks.remove(self._plain_hook)

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

    def _wiredflow_hook(self, ref: Any, stage: Any, target: Callable[..., Any]) -> Callable[..., Any] | None:
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

    def _plain_hook(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
        entry = self.entries.get(name)
        return self._remote(entry, fn) if entry is not None else None

    def _remote(self, entry: OffloadEntry, fn: Callable[..., Any]) -> RemoteStageFunction:
        # One stand-in per function, so a stateful callable is shipped once and keeps its state on the host.
        key = (entry.stage, id(fn))
        rf = self._remotes.get(key)
        if rf is None or rf.fn is not fn:
            rf = self._remotes[key] = RemoteStageFunction(self, entry, fn)
        return rf
