"""The one place a stage call is timed: shared by the wiredflow and plain-Python adapters."""
from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any, Callable, TypeVar

from wiredprof.profiling.recorder import Recorder, StageAccumulator

__all__ = ["timed_call", "StageTimer"]

T = TypeVar("T")


class StageTimer:
    """Times one call of a stage: `begin()` then `end(error)`, on the same thread.

    Decides at `begin` whether this call is one the call-tree sampler takes; such a call
    runs under pyinstrument and is recorded as sampled, outside the timing statistics.
    """

    __slots__ = ("rec", "acc", "start", "cpu_start", "profiler", "ordinal")

    def __init__(self, rec: Recorder, acc: StageAccumulator) -> None:
        self.rec = rec
        self.acc = acc
        self.profiler: Any = None

    def begin(self) -> None:
        acc = self.acc
        acc.seen += 1
        self.ordinal = acc.seen
        sampler = self.rec.call_trees
        if sampler is not None and sampler.wants(acc, self.ordinal):
            self.profiler = sampler.start()
        self.start, self.cpu_start = self.rec.enter(acc)

    def end(self, error: BaseException | None = None) -> None:
        # Only exceptions count as stage errors; KeyboardInterrupt and the like are not the stage's.
        err = error if isinstance(error, Exception) else None
        sampled = self.profiler is not None
        self.rec.exit(self.acc, self.start, self.cpu_start, err, sampled)
        if sampled:
            session = self.rec.call_trees.stop(self.acc, self.profiler, self.ordinal)
            if session is not None:
                self.rec.forward_calltree(self.acc, session, self.ordinal)


    def cancel(self) -> None:
        """Forget this call (it turned out not to be one)."""
        self.acc.seen -= 1
        self.rec.cancel()
        if self.profiler is not None:
            try:
                self.profiler.stop()
            except Exception:
                pass
            self.profiler = None


def timed_call(rec: Recorder, acc: StageAccumulator, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn` as one call of stage `acc`; a generator result is timed item by item."""
    timer = StageTimer(rec, acc)
    timer.begin()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        timer.end(exc)
        raise
    if inspect.isgenerator(result):
        timer.cancel()  # creating the generator is not a call; its items are
        return _timed_items(rec, acc, result)  # type: ignore[return-value]
    timer.end()
    return result


def _timed_items(rec: Recorder, acc: StageAccumulator, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """A generator stage does its work while it is iterated: each item is one call."""
    while True:
        timer = StageTimer(rec, acc)
        timer.begin()
        try:
            item = next(gen)
        except StopIteration:
            timer.cancel()
            return
        except BaseException as exc:
            timer.end(exc)
            raise
        timer.end()
        yield item
