"""Call stacks of a few stage calls, sampled with pyinstrument and kept out of the timings.

Any profile hook slows pure-Python code by 70-90 % while it is installed (measured on
3.11), so a sampled call's timings would lie: the recorder counts it in
`sampled_calls` only. Which calls are sampled: the 2nd call of a stage, then every
`every`-th, at most `max_per_stage`, and only for stages whose calls last long enough for
a call tree to say something.

Everything a sampled call needs is imported when the sampler is made, before the flow
starts: imported on the flow's thread at its first sampled call, paramiko and
cryptography (for the transfer sizes) held the import lock for 0.1 s alone and 5.8 s
with two MQTT loops spinning, and stalled every thread that imported anything meanwhile.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

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
        self, min_mean_s: float = 0.002, max_per_stage: int = 3, every: int = 25, interval_s: float = 0.001
    ) -> None:
        self.min_mean_s = min_mean_s
        self.max_per_stage = max_per_stage
        self.every = every
        self.interval_s = interval_s
        self._trees: dict[tuple[str, str], _StageTrees] = {}
        self._lock = threading.Lock()
        prepare_sampled_calls()

    def wants(self, acc: StageAccumulator, ordinal: int) -> bool:
        """Sample call number `ordinal` (1-based) of this stage?"""
        if acc.sampled >= self.max_per_stage or acc.calls < 1 or acc.mean < self.min_mean_s:
            return False
        if acc.host != "local":
            return False  # here an offloaded stage only waits on its host: nothing to see in its stacks
        return ordinal == 2 or (ordinal > 2 and ordinal % self.every == 0)

    def start(self) -> Profiler:
        profiler = Profiler(interval=self.interval_s, async_mode="disabled")
        profiler.start()
        return profiler

    def stop(self, acc: StageAccumulator, profiler: Profiler, ordinal: int) -> Session | None:
        """Stop sampling this call and fold its session into the stage's tree."""
        try:
            session = profiler.stop()
        except Exception:  # a profiler that failed must never break the user's stage
            log.debug("pyinstrument stop failed", exc_info=True)
            return None
        self.add(acc.pipeline, acc.stage, session, ordinal)
        return session

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
