"""The one place a stage call is timed: shared by the wiredflow and plain-Python adapters."""
from __future__ import annotations

from collections.abc import Generator
from types import GeneratorType
from typing import Any, Callable, TypeVar

from wiredprof.profiling.accumulators import StageAccumulator
from wiredprof.profiling.childlink import CallTreeRecord
from wiredprof.profiling.recorder import Recorder

__all__ = ["timed_call", "sampled_call", "timed_items", "StageTimer"]

T = TypeVar("T")


class StageTimer:
    """Times one call of a stage: `begin()` then `end(error)`, on the same thread.

    Decides at `begin` whether this call is one the call-tree sampler takes; such a call
    runs under pyinstrument and is recorded as sampled, outside the timing statistics,
    and its whole window (profiler start and stop included) is kept out of the stage
    that encloses it, if any.
    """

    __slots__ = ("rec", "acc", "start", "cpu_start", "profiler", "ordinal", "outer", "call")

    def __init__(self, rec: Recorder, acc: StageAccumulator) -> None:
        self.rec = rec
        self.acc = acc
        self.profiler: Any = None
        self.call: tuple[tuple[Any, ...], dict[str, Any]] | None = None  # arguments, to measure transfer sizes

    def begin(self) -> None:
        acc = self.acc
        acc.seen += 1
        self.ordinal = acc.seen
        sampler = self.rec.call_trees
        if sampler is not None and sampler.wants(acc, self.ordinal):
            self.outer = (self.rec.clock(), self.rec.cpu_clock())
            self.profiler = sampler.start()
            self.start, self.cpu_start = self.rec.enter(acc, sampled=True)
        else:
            self.start, self.cpu_start = self.rec.enter(acc)

    def end(self, error: BaseException | None = None, result: Any = None) -> None:
        # Only exceptions count as stage errors; KeyboardInterrupt and the like are not the stage's.
        err = error if isinstance(error, Exception) else None
        sampled = self.profiler is not None
        rec, acc = self.rec, self.acc
        rec.exit(acc, self.start, self.cpu_start, err, sampled)
        if not sampled:
            return
        sampler = rec.call_trees
        assert sampler is not None
        session = sampler.stop(acc, self.profiler, self.ordinal)
        if session is not None and rec.in_child:
            from wiredprof.profiling.calltree import compact_session_json  # imported already: forked

            rec.forward(CallTreeRecord(acc.pipeline, acc.stage, self.ordinal, compact_session_json(session)))
        if self.call is not None and err is None:
            cpu0 = rec.cpu_clock()
            _measure_transfer(rec, acc, self.call[0], self.call[1], result)
            charge = getattr(sampler, "charge", None)
            if charge is not None:
                charge(rec.cpu_clock() - cpu0)
        # Keep the whole sampled window (profiler start and stop, the transfer sizes) out
        # of the stage that encloses this call.
        wall0, cpu0 = self.outer
        rec.exclude(rec.clock() - wall0, rec.cpu_clock() - cpu0)

    def cancel(self) -> None:
        """Forget this call (it turned out not to be one)."""
        self.acc.seen -= 1
        self.rec.cancel(sampled=self.profiler is not None)
        if self.profiler is not None:
            cancel = getattr(self.rec.call_trees, "cancel", None)
            try:
                cancel(self.profiler) if cancel is not None else self.profiler.stop()
            except Exception:  # a profiler that failed must never break the user's stage
                pass
            self.profiler = None


def timed_call(rec: Recorder, acc: StageAccumulator, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn` as one call of stage `acc`; a generator result is timed item by item."""
    return rec.call(acc, fn, args, kwargs)  # type: ignore[no-any-return]


def sampled_call(
    rec: Recorder, acc: StageAccumulator, ordinal: int, fn: Callable[..., T], args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """Call number `ordinal` of `acc`, one the call-tree sampler takes (see Recorder.call)."""
    sampler = rec.call_trees
    assert sampler is not None
    timer = StageTimer(rec, acc)
    timer.ordinal = ordinal
    timer.outer = (rec.clock(), rec.cpu_clock())
    timer.profiler = sampler.start()
    timer.call = (args, kwargs)
    timer.start, timer.cpu_start = rec.enter(acc, sampled=True)
    return _timer_call(timer, rec, acc, fn, args, kwargs)


def _timer_call(
    timer: StageTimer, rec: Recorder, acc: StageAccumulator, fn: Callable[..., T],
    args: tuple[Any, ...], kwargs: dict[str, Any],
) -> T:
    """The rest of a call begun by `timer.begin()`."""
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        timer.end(exc)
        raise
    if isinstance(result, GeneratorType):
        timer.cancel()  # creating the generator is not a call; its items are
        return timed_items(rec, acc, result)  # type: ignore[return-value]
    timer.end(None, result)
    return result


def _measure_transfer(rec: Recorder, acc: StageAccumulator, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    """Bytes this call would send to another host and get back (the planner's transfer cost).

    Measured on the few calls sampled for call stacks only, which are out of the timings
    already: pickling is as wiredprof.remote would do it, with what cannot travel staying
    here behind a proxy. A stage that cannot be pickled at all is left unmeasured.
    """
    try:
        from wiredprof.remote.serialize import LocalObjects, dump_value  # imported before the run (calltree.py)

        sent = len(dump_value((args, kwargs), LocalObjects(), "the stage's arguments"))
        back = len(dump_value(result, LocalObjects(), "the stage's result"))
    except Exception:  # noqa: BLE001 - a measurement must never break the stage
        return
    rec.add_transfer(acc, sent, back)


def timed_items(rec: Recorder, acc: StageAccumulator, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
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
