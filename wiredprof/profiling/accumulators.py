"""Running totals of stages, cycles and threads, with memory bounded by the number of stages.

A stage's totals are kept in shards, one per thread that calls it, each written by its
own thread only: the per-call path takes no lock. Call counts and wall totals are
updated on every call; the rest (CPU, max, the p95 histogram) is folded in batches from
the thread's list of finished spans (see recorder.py). Reading an accumulator merges its
shards and the spans not folded yet.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from wiredprof.profile import ErrorInfo

if TYPE_CHECKING:
    from ddsketch import DDSketch

__all__ = [
    "StageAccumulator",
    "StageShard",
    "Span",
    "CycleAccumulator",
    "CycleShard",
    "ThreadInfo",
    "SKETCH_ACCURACY",
    "CPU_EVERY_CALL_S",
    "CPU_READ_EVERY",
]

# The thread CPU clock is a system call (0.5 us a read here, twice that in what it evicts
# from the caches): read on a thread's first 16 calls of a stage, then on every call of a
# stage whose calls use 0.2 ms of CPU or more (where two reads are under 1 %), on one call
# in 16 of others, whose CPU is then the stage's measured CPU share of its wall time. The CPU those calls use is small by
# construction, and so is what an estimate can be wrong by.
CPU_EVERY_CALL_S = 0.0002
CPU_READ_EVERY = 16

# p95 within 1 % relative error. Values fall into logarithmic buckets, the same ones
# DDSketch uses: key = ceil(log(v) / log(gamma)), the bucket (gamma^(k-1), gamma^k]. A
# batch is sorted (in C) and counted one bucket it fills at a time, with one bisection
# each: 0.06-0.5 us a value here, as the values fill fewer or more buckets; values spread
# over more buckets than there are values get each its key, by `map`s of C functions
# (0.45 us a value, as DDSketch.add; math.log alone takes 0.25 us here, log2 0.07 us).
SKETCH_ACCURACY = 0.01
_GAMMA = (1 + SKETCH_ACCURACY) / (1 - SKETCH_ACCURACY)
_PER_LOG2_GAMMA = 1.0 / math.log2(_GAMMA)
_KEY_MIN = math.floor(math.log2(1e-9) * _PER_LOG2_GAMMA)  # 1 ns and shorter: the zero bucket
_BOUNDS = [_GAMMA**k for k in range(_KEY_MIN, math.ceil(math.log2(1e7) * _PER_LOG2_GAMMA) + 2)]  # to 116 days


# One finished stage call, as kept in a thread's pending list and in the timeline window:
# (stage number, start on the recorder's clock, self wall, self cpu, error, sampled). A plain
# tuple: a NamedTuple's constructor is a Python function, three times the cost on every call;
# and of numbers only, so the garbage collector stops tracking it at its first look.
Span = tuple[int, float, float, float, bool, bool]


class StageShard:
    """One thread's totals of one stage: written by that thread only."""

    __slots__ = ("acc", "number", "calls", "total", "cpu", "max", "hist", "sampled", "skip", "ratio", "cpu_wall",
                 "cpu_read")

    def __init__(self, acc: StageAccumulator) -> None:
        self.acc = acc
        self.number: int = getattr(acc, "number", 0)  # the stage's number (its row value, its spans' key)
        self.calls = 0  # timed calls, updated on every call
        self.total = 0.0  # their self wall time, updated on every call
        self.cpu = 0.0  # folded from spans in batches
        self.max = 0.0
        self.hist: Counter[int] = Counter()  # bucket index -> calls
        self.sampled = 0
        # The CPU clock is read on the first CPU_READ_EVERY calls, then on every call of a stage
        # that uses CPU_EVERY_CALL_S or more a call, on one call in CPU_READ_EVERY of others: `skip` calls to go
        # before the next read, and the self CPU over self wall of the calls it was read on.
        self.skip = 0
        self.ratio = 0.0
        self.cpu_wall = 0.0  # self wall of the calls whose CPU clock was read
        self.cpu_read = 0.0  # their self CPU

    def cpu_was_read(self, wall: float, cpu: float) -> None:
        """A call whose CPU clock was read: update the ratio and say when to read it again."""
        self.cpu_wall += wall
        self.cpu_read += cpu
        if self.cpu_wall > 0.0:
            self.ratio = self.cpu_read / self.cpu_wall
        self.skip = 0 if cpu >= CPU_EVERY_CALL_S or self.calls < CPU_READ_EVERY else CPU_READ_EVERY - 1

    def fold(self, walls: list[float], cpus: Iterable[float]) -> None:
        """Add a batch of timed calls' wall and CPU times (calls and total are counted already)."""
        self.cpu += sum(cpus)
        if not walls:
            return
        top = max(walls)
        if top > self.max:
            self.max = top
        walls.sort()
        count_into(self.hist, walls)


def count_into(hist: Counter[int], walls: list[float]) -> None:
    """Count sorted, non-negative values into their buckets: one step per bucket they fill."""
    n = len(walls)
    i = bisect_right(walls, 1e-9)  # self times are clamped at zero: those and the tiny ones
    if i:
        hist[_KEY_MIN] += i
    if i == n:
        return
    ceil, log2, per, bounds, bisect = math.ceil, math.log2, _PER_LOG2_GAMMA, _BOUNDS, bisect_right
    if ceil(log2(walls[-1]) * per) - ceil(log2(walls[i]) * per) > n - i:
        # Spread over more buckets than values: each value's key, computed and counted in C.
        hist.update(map(ceil, map(per.__mul__, map(log2, walls[i:] if i else walls))))
        return
    while i < n:
        key = ceil(log2(walls[i]) * per)
        j = bisect(walls, bounds[key - _KEY_MIN], i)
        if j <= i:  # rounding put the value a hair above its bucket's bound
            j = i + 1
        hist[key] += j - i
        i = j


def _representative(key: int) -> float:
    """DDSketch's value for the bucket (gamma^(k-1), gamma^k]: within 1 % of any value in it."""
    if key <= _KEY_MIN:
        return 0.0
    return 2 * _GAMMA**key / (1 + _GAMMA)


def _histogram_to_sketch(hist: Counter[int]) -> DDSketch:
    """A DDSketch holding the histogram's counts, each at its bucket's representative value."""
    from ddsketch import DDSketch  # only to read: the plain API imports this module

    sketch = DDSketch(SKETCH_ACCURACY)
    for index, count in hist.items():
        if count <= 0:
            continue
        sketch.add(_representative(index), count)
    return sketch


class _Sharded:
    """Totals kept in per-thread shards, added up on read."""

    shards: list[Any]

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.shards)

    def _fsum(self, name: str) -> float:
        return math.fsum(getattr(s, name) for s in self.shards)


class StageAccumulator(_Sharded):
    """Running totals of one stage: its shards merged on read."""

    def __init__(
        self,
        pipeline: str,
        stage: str,
        kind: str = "",
        index: int = 0,
        function: str = "",
        host: str = "local",
        pending_sources: list[list[Span]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stage = stage
        self.kind = kind or stage
        self.index = index
        self.function = function
        self.host = host
        self.name = f"{pipeline}.{stage}"
        self.shards: list[StageShard] = []
        # Calls recorded from other threads' paths (forwarded by children, errors): under the lock.
        self.base = StageShard(self)
        self.shards.append(self.base)
        self.errors = 0
        self.sampled = 0
        self.seen = 0  # calls entered, sampled or not (ordinal of the next call - 1)
        self.next_check = 2  # the call-tree sampler is asked again at this ordinal (it moves it)
        self.retries = 0
        self.fallbacks = 0
        self.retries_after_start = 0
        self.timeouts = 0
        self.link_losses = 0
        self.bytes_in = 0
        self.bytes_out = 0
        # Pickled size of arguments and results, measured on sampled calls (see instrument.py).
        self.transfer_samples = 0
        self.transfer_in = 0
        self.transfer_out = 0
        self.last_error: ErrorInfo | None = None
        self.number = 0  # its id in the shared thread-state table (see statetable.py)
        # Thread-state samples taken while a call of this stage was running (see threads.py).
        self.samples_running = 0
        self.samples_lock_wait = 0
        self.samples_io_wait = 0
        self.rss_peak = 0  # most resident memory one call added (bytes), sampled
        self.queue_s = 0.0  # runnable but queued for a core: the kernel's run delay (see statesampler.py)
        self.queue_measured = False  # the sampler read run delays (else: estimated from states)
        self.queue_seen_s = 0.0  # seconds the sampler saw this stage for
        self.queue_whole_s = 0.0  # of them, in ticks the stage covered whole (measured, not prorated)
        # Calls back to objects that stay on host A (see callbacks.py): count, time, sized bytes.
        self.callbacks = 0
        self.callback_s = 0.0
        self.callback_cpu_s = 0.0
        self.callback_sized = 0  # call-backs whose bytes were measured
        self.callback_bytes = 0  # over the measured ones
        self.callback_pickle_s = 0.0  # time pickling them took, over the measured ones
        self.callback_unpickle_s = 0.0  # and unpickling them
        self.competitors: dict[str, float] = {}
        self.last_wall = 0.0  # the last timed call's self time (the call-tree sampler looks)
        # Every thread's list of spans not folded yet (the recorder's; see recorder.py).
        self.pending_sources: list[list[Span]] = pending_sources if pending_sources is not None else []

    def __repr__(self) -> str:
        return f"StageAccumulator({self.name!r}, calls={self.calls})"

    @property
    def key(self) -> tuple[str, str]:
        return (self.pipeline, self.stage)

    def _pending(self) -> Iterator[Span]:
        """Timed calls of this stage not folded into a shard yet."""
        for source in list(self.pending_sources):
            for span in list(source):  # a copy: the owner thread may append meanwhile
                if span[0] == self.number and not span[5]:
                    yield span

    @property
    def calls(self) -> int:
        return self._sum("calls")

    @property
    def total(self) -> float:
        return self._fsum("total")

    @property
    def cpu(self) -> float:
        return math.fsum([s.cpu for s in self.shards] + [p[3] for p in self._pending()])

    @property
    def max(self) -> float:
        return max([s.max for s in self.shards] + [p[2] for p in self._pending()])

    @property
    def mean(self) -> float:
        calls = self.calls
        return self.total / calls if calls else 0.0

    def histogram(self) -> Counter[int]:
        """Calls per logarithmic bucket, every shard and pending span merged."""
        hist: Counter[int] = Counter()
        for s in self.shards:
            hist.update(s.hist)
        count_into(hist, sorted(p[2] for p in self._pending()))
        return hist

    @property
    def sketch(self) -> DDSketch:
        """The timed calls' wall times as a DDSketch (built on each read)."""
        return _histogram_to_sketch(self.histogram())

    def quantile(self, q: float) -> float:
        """The nearest-rank `q` quantile of the timed calls' wall times (1 % relative accuracy).

        Exact when it is the slowest call (the p95 of fewer than 20 calls): never below it.
        """
        calls = self.calls
        if not calls:
            return 0.0
        top = self.max
        rank = math.ceil(q * calls)
        if rank >= calls:
            return top
        seen = 0
        hist = self.histogram()
        for index in sorted(hist):
            seen += hist[index]
            if seen >= rank:
                return min(_representative(index), top)
        return top


class CycleShard:
    """One thread's totals of one pipeline's cycles: written by that thread only."""

    __slots__ = ("runs", "total", "max", "errors", "sampled")

    def __init__(self) -> None:
        self.runs = 0
        self.total = 0.0  # over timed cycles: those with no sampled call in them
        self.max = 0.0
        self.errors = 0
        self.sampled = 0  # cycles that ran a call under the call-tree sampler (not timed)


class CycleAccumulator(_Sharded):
    """Running totals of one pipeline's cycles (one pass over its chain): its shards merged on read."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.shards: list[CycleShard] = []

    def __repr__(self) -> str:
        return f"CycleAccumulator({self.pipeline!r}, runs={self.runs})"

    @property
    def runs(self) -> int:
        return self._sum("runs")

    @property
    def total(self) -> float:
        return self._fsum("total")

    @property
    def max(self) -> float:
        return max((s.max for s in self.shards), default=0.0)

    @property
    def errors(self) -> int:
        return self._sum("errors")

    @property
    def sampled(self) -> int:
        return self._sum("sampled")

    @property
    def timed(self) -> int:
        return self.runs - self.sampled


@dataclass
class ThreadInfo:
    """What a thread of the flow is, for attributing its CPU time."""

    name: str
    pipeline: str
    role: str  # "pipeline", "mqtt-network", "main", "other"
    stage_cpu: float = 0.0
    cpu: float = 0.0  # last known total CPU of the thread
    cpu_base: float = 0.0  # its CPU when wiredprof first heard of it (start-up, imports: not the flow's)
