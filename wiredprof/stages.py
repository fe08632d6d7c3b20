"""Stage names as users type them: `PIPELINE.STAGE` always, a bare `STAGE` when unique.

A wiredflow stage is also found by its custom function's name (`heavy_model` for a core
logic built from `def heavy_model(...)`), since that is the name users see in their code.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from wiredprof.errors import UsageError

__all__ = ["StageName", "resolve_stage", "offload_refusal", "UnknownStageError", "AmbiguousStageError"]


class UnknownStageError(UsageError):
    """No stage has that name."""


class AmbiguousStageError(UsageError):
    """A bare stage name that several pipelines have."""


@dataclass(frozen=True)
class StageName:
    """A stage as the flow knows it."""

    pipeline: str
    stage: str
    function: str = ""
    builtin: bool = False  # a wiredflow built-in stage (no callable of the user's to ship)
    ship_error: str = ""  # why its callable cannot be shipped to another host ("" when it can)
    stateful: tuple[str, ...] = ()  # why its callable keeps state between calls (it would live on the host)
    needs: str = ""  # JSON of what its callable needs on another host (wiredprof.remote.requirements)
    flow: int = 1  # which `launch_flow` call of the script built it (1, 2, ...; see profile flows)

    @property
    def full(self) -> str:
        return f"{self.pipeline}.{self.stage}"


def offload_refusal(stage: StageName) -> str:
    """Why `wiredprof offload` refuses to move `stage` ("" when it accepts it); the planner asks too."""
    if stage.builtin:
        return (f"{stage.full} is wiredflow's built-in {stage.function or 'stage'}; only stages built from "
                "your own callables can be offloaded")
    if stage.ship_error:
        return f"{stage.full} cannot be offloaded: {stage.ship_error}"
    return ""


def resolve_stage(name: str, stages: Iterable[StageName], where: str = "the flow") -> StageName:
    """The one stage `name` means; a clear one-line error when none or several do."""
    known = list(stages)
    exact = [s for s in known if s.full == name]
    if exact:
        return exact[0]
    bare = [s for s in known if s.stage == name]
    if not bare:
        fn = name.rsplit(".", 1)[-1]
        bare = [s for s in known if s.function and s.function.rsplit(".", 1)[-1] == fn
                and (s.pipeline == name.rsplit(".", 1)[0] or "." not in name)]
    if len(bare) == 1:
        return bare[0]
    if len(bare) > 1:
        options = ", ".join(sorted(s.full for s in bare))
        raise AmbiguousStageError(f"stage {name!r} is in several pipelines: say which one ({options})")
    names = sorted({s.full for s in known} | {s.stage for s in known})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    several = len({s.flow for s in known}) > 1
    listing = ", ".join(f"{s.full} (flow #{s.flow})" if several else s.full
                        for s in sorted(known, key=lambda s: (s.flow, s.full))) or "none"
    raise UnknownStageError(f"no stage {name!r} in {where}{hint} (stages: {listing})")
