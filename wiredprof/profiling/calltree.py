"""Call stacks of a few stage calls, sampled with pyinstrument and kept out of the timings.

Any profile hook slows pure-Python code by 70-90 % while it is installed (measured on
3.11), so a sampled call's timings would lie: the recorder counts it in
`sampled_calls` only. Which calls are sampled: the 2nd call of a stage, then every
`every`-th, at most `max_per_stage`, and only for stages whose calls last long enough for
a call tree to say something. A flow of hundreds of stages would otherwise spend more on
sampling than on its work: at most `max_in_flight` sampled calls at a time (a stage turned
down for that is asked again at its next call), and the CPU they take (thread CPU while the
profiler runs) stays within `budget` of the run's time, after a small `grace_s`.

Everything a sampled call needs is imported when the sampler is made, before the flow
starts: imported on the flow's thread at its first sampled call, paramiko and
cryptography (for the transfer sizes) held the import lock for 0.1 s alone and 5.8 s
with two MQTT loops spinning, and stalled every thread that imported anything meanwhile.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

from wiredprof.profile import CallTree
from wiredprof.profiling.accumulators import StageAccumulator

__all__ = ["CallTreeSampler", "compact_session_json"]

log = logging.getLogger(__name__)


@dataclass
class _StageTrees:
    session: Session | None = None
    ordinals: list[int] = field(default_factory=list)


class CallTreeSampler:
    """Decides which calls to sample and keeps one combined pyinstrument session per stage."""

    def __init__(
        self, min_mean_s: float = 0.002, max_per_stage: int = 3, every: int = 25, interval_s: float = 0.001,
        budget: float = 0.01, grace_s: float = 0.1, max_in_flight: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_mean_s = min_mean_s
        self.max_per_stage = max_per_stage
        self.every = every
        self.interval_s = interval_s
        self.budget = budget
        self.grace_s = grace_s
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.started = clock()
        self.spent_cpu_s = 0.0  # thread CPU of the sampled calls so far
        self.skipped = 0  # calls the budget turned down
        self._running: dict[int, float] = {}  # id(profiler) -> thread CPU at its start
        self._trees: dict[tuple[str, str], _StageTrees] = {}
        self._lock = threading.Lock()
        prepare_sampled_calls()

    def within_budget(self) -> bool:
        """The CPU spent on sampled calls so far within the budget of the time run."""
        return self.spent_cpu_s <= self.grace_s + self.budget * (self.clock() - self.started)

    def wants(self, acc: StageAccumulator, ordinal: int) -> bool:
        """Sample call number `ordinal` (1-based) of this stage? Also says when to ask next (`acc.next_check`)."""
        # The cheap questions first: with hundreds of stages this is asked often.
        later = (ordinal // self.every + 1) * self.every
        if acc.sampled >= self.max_per_stage or acc.host != "local":
            # (an offloaded stage only waits on its host here: nothing to see in its stacks)
            acc.next_check = 1 << 62
            return False
        if ordinal < 2:
            acc.next_check = 2
            return False
        if len(self._running) >= self.max_in_flight:  # others are being sampled: ask again soon
            acc.next_check = ordinal + RETRY_AFTER
            self.skipped += 1
            return False
        if not self.within_budget():
            acc.next_check = later
            self.skipped += 1
            return False
        acc.next_check = later
        return acc.calls >= 1 and acc.mean >= self.min_mean_s

    def start(self) -> Profiler:
        profiler = Profiler(interval=self.interval_s, async_mode="disabled")
        self._running[id(profiler)] = time.thread_time()
        profiler.start()
        return profiler

    def cancel(self, profiler: Profiler) -> None:
        """Stop sampling a call that turned out not to be one (its session is dropped)."""
        self._charge(profiler)
        try:
            profiler.stop()
        except Exception:
            log.debug("pyinstrument stop failed", exc_info=True)

    def charge(self, cpu_s: float) -> None:
        """Count what a sampled call cost beyond its profiler's window (transfer sizes, say)."""
        self.spent_cpu_s += max(0.0, cpu_s)

    def _charge(self, profiler: Profiler) -> None:
        started = self._running.pop(id(profiler), None)
        if started is not None:
            self.spent_cpu_s += max(0.0, time.thread_time() - started)

    def stop(self, acc: StageAccumulator, profiler: Profiler, ordinal: int) -> Session | None:
        """Stop sampling this call and fold its session into the stage's tree (charged to the budget too)."""
        try:
            try:
                session = profiler.stop()
            except Exception:  # a profiler that failed must never break the user's stage
                log.debug("pyinstrument stop failed", exc_info=True)
                return None
            self.add(acc.pipeline, acc.stage, session, ordinal)
            return session
        finally:
            self._charge(profiler)

    def add(self, pipeline: str, stage: str, session: Session, ordinal: int) -> None:
        with self._lock:
            trees = self._trees.setdefault((pipeline, stage), _StageTrees())
            trees.session = session if trees.session is None else Session.combine(trees.session, session)
            trees.ordinals.append(ordinal)

    def add_json(self, pipeline: str, stage: str, session_json: dict[str, Any], ordinal: int) -> None:
        """Fold a session forwarded from a child process."""
        self.add(pipeline, stage, Session.from_json(session_json), ordinal)

    def trees(self) -> list[CallTree]:
        """One `CallTree` per sampled stage, rendered as text and kept as session JSON."""
        out = []
        renderer = ConsoleRenderer(unicode=True, color=False)
        with self._lock:
            items = list(self._trees.items())
        for (pipeline, stage), trees in items:
            if trees.session is None:
                continue
            out.append(
                CallTree(
                    pipeline=pipeline,
                    stage=stage,
                    sampled_calls=sorted(trees.ordinals),
                    duration_s=float(trees.session.duration),
                    text=renderer.render(trees.session),
                    session=compact_session_json(trees.session),
                )
            )
        return out


def prepare_sampled_calls() -> None:
    """Import now what a sampled call would import (once per process; 0.2-0.5 s)."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    # The transfer sizes: paramiko, cryptography and cloudpickle to import, and 60 ms of
    # first-use set-up in the serializer (module paths) on the first value it pickles.
    from wiredprof.remote.serialize import LocalObjects, dump_value

    class _WarmUp:
        pass

    dump_value(((1, "a", [1.0], _WarmUp()), {"k": None}), LocalObjects(), "a warm-up value")
    profiler = Profiler(interval=0.001, async_mode="disabled")  # pyinstrument's lazy imports
    profiler.start()
    profiler.stop()


_prepared = False
RETRY_AFTER = 5  # calls a stage waits before asking again when the sampler was busy


def compact_session_json(session: Session, keep: float = 0.995, max_stacks: int = 400) -> dict[str, Any]:
    """pyinstrument's session JSON with identical stacks merged and the thinnest tail dropped.

    A 6 s call sampled every millisecond is 6,000 records; merged, a few hundred. The
    stacks kept cover `keep` of the sampled time, so the rendered tree is unchanged to
    the eye while the saved profile stays small.
    """
    merged: dict[tuple[str, ...], float] = {}
    for stack, t in session.frame_records:
        key: tuple[str, ...] = tuple(stack)
        merged[key] = merged.get(key, 0.0) + t
    total = sum(merged.values()) or 1.0
    kept: list[list[Any]] = []
    covered = 0.0
    for frames, t in sorted(merged.items(), key=lambda kv: kv[1], reverse=True):
        if covered >= keep * total or len(kept) >= max_stacks:
            break
        kept.append([list(frames), t])
        covered += t
    data: dict[str, Any] = session.to_json(include_frame_records=False)
    data["frame_records"] = kept
    return data
