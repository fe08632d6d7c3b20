"""The public API for plain-Python services: mark pipelines and stages by hand.

    with wiredprof.pipeline("pipeline_3"):          # one cycle of a pipeline
        with wiredprof.stage("send", kind="send"):  # one call of a stage
            ...

    @wiredprof.stage("core_logic", kind="core_logic")
    def core_logic(batch): ...

Outside `wiredprof analyze` / `wiredprof run` these cost one global lookup. Under a
profiler run, entering a pipeline after the run is over raises `FlowStopped` (a
`SystemExit`), which ends that pipeline's thread quietly; `should_stop()` lets loops ask.
"""
from __future__ import annotations

import functools
import threading
from types import TracebackType
from typing import Any, Callable, TypeVar, cast

from wiredprof.adapters import stage_swap
from wiredprof.profiling import control as _control
from wiredprof.profiling.control import current_control
from wiredprof.profiling import recorder as _recording
from wiredprof.profiling.instrument import StageTimer
from wiredprof.profiling.recorder import current_recorder

__all__ = ["pipeline", "stage", "should_stop", "FlowStopped", "PipelineCycle", "StageCall"]

F = TypeVar("F", bound=Callable[..., Any])

_local = threading.local()


class FlowStopped(SystemExit):
    """Raised when a pipeline is entered after the profiler run is over."""


def should_stop(pipeline: str | None = None) -> bool:
    """True when the profiler run wants the flow (or this pipeline) to stop."""
    control = current_control()
    return control is not None and control.should_stop(pipeline or _current_pipeline())


def _flow_starts() -> None:
    """A plain flow starts running when its first pipeline or stage does: `--duration` counts from there."""
    control = current_control()
    if control is not None:
        control.mark_flow_started()


def _pipelines() -> list[tuple[str, float]]:
    stack: list[tuple[str, float]] | None = getattr(_local, "pipelines", None)
    if stack is None:
        stack = _local.pipelines = []
    return stack


def _current_pipeline() -> str | None:
    stack = _pipelines()
    return stack[-1][0] if stack else None


class PipelineCycle:
    """One cycle of a pipeline; a context manager, or a decorator (each call a cycle)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> PipelineCycle:
        # Every cycle of every pipeline passes here: module globals read directly, one call
        # into the recorder (its registration check and the clock).
        rec = _recording._current
        stack = getattr(_local, "pipelines", None)
        if stack is None:
            stack = _local.pipelines = []
        if rec is None:
            stack.append((self.name, 0.0))
            return self
        control = _control._current
        if control is not None:
            control.mark_flow_started()
            if control.should_stop(self.name):
                raise FlowStopped(0)
        stack.append((self.name, rec.begin_cycle(self.name)))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        name, start = _local.pipelines.pop()
        rec = _recording._current
        if rec is not None and start:
            rec.add_cycle(name, rec.clock() - start, failed=exc is not None and isinstance(exc, Exception))

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def cycle(*args: Any, **kwargs: Any) -> Any:
            with PipelineCycle(self.name):
                return fn(*args, **kwargs)

        return cast(F, cycle)


class StageCall:
    """One call of a stage; a context manager, or a decorator (each call of the function)."""

    def __init__(self, name: str, kind: str | None = None, pipeline: str | None = None) -> None:
        self.name = name
        self.kind = kind or name
        self.pipeline = pipeline

    def _accumulator(self, function: str = "") -> Any:
        rec = current_recorder()
        if rec is None:
            return None, None
        pipeline = self.pipeline or _current_pipeline() or "main"
        _flow_starts()
        return rec, rec.stage(pipeline, self.name, self.kind, function=function)

    def __enter__(self) -> StageCall:
        rec, acc = self._accumulator()
        timers = getattr(_local, "timers", None)
        if timers is None:
            timers = _local.timers = []
        timer = StageTimer(rec, acc) if rec is not None else None
        timers.append(timer)
        if timer is not None:
            timer.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        timer = _local.timers.pop()
        if timer is not None:
            timer.end(exc)

    def __call__(self, fn: F) -> F:
        function = getattr(fn, "__qualname__", repr(fn))

        # Per pipeline this decorated function runs in: (recorder, accumulator, callable), as
        # resolved at its first call there; resolving them again costs about 0.4 us a call.
        resolved: dict[str, tuple[Any, Any, Any]] = {}

        @functools.wraps(fn)
        def stage_call(*args: Any, **kwargs: Any) -> Any:
            rec = _recording._current  # current_recorder(), without the call: every stage call asks
            if rec is None:
                return fn(*args, **kwargs)
            pipeline = self.pipeline
            if pipeline is None:
                try:  # free when it does not raise: cheaper than getattr(_local, "pipelines", None)
                    stack = _local.pipelines
                except AttributeError:
                    stack = None
                pipeline = stack[-1][0] if stack else "main"
            hit = resolved.get(pipeline)
            if hit is None or hit[0] is not rec:
                _flow_starts()
                acc = rec.stage(pipeline, self.name, self.kind, function=function)
                target: Callable[..., Any] = fn
                swap = stage_swap()  # offload swaps in a remote proxy here
                if swap is not None:
                    target = swap.plain_stage(acc.name, fn) or target
                hit = resolved[pipeline] = (rec, acc, target)
            _, acc, target = hit
            return rec.call(acc, target, args, kwargs)

        stage_call.__wiredprof_stage__ = self  # type: ignore[attr-defined]
        return cast(F, stage_call)


def pipeline(name: str) -> PipelineCycle:
    """Mark one cycle of pipeline `name` (context manager or decorator)."""
    return PipelineCycle(name)


def stage(name: str, kind: str | None = None, pipeline: str | None = None) -> StageCall:
    """Mark one call of stage `name` (context manager or decorator).

    `pipeline` defaults to the pipeline whose cycle is running on this thread.
    """
    return StageCall(name, kind, pipeline)
