"""What the picture-drawing reports share: a stage's kind and the colour it is drawn in.

The HTML page, the timeline image and the before/after pictures colour a stage by its
kind (`storage` and `storage_2` alike), so one legend reads for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from wiredprof.profile import Profile

__all__ = [
    "KIND_COLORS", "ERROR_COLOR", "stage_kinds", "kind_of", "kind_colors", "profile_colors", "no_call_tree_reason",
]

# wiredflow's stage kinds, in colours that stay apart for colour-blind readers
# (Tableau 10 family). Red is kept for errors.
KIND_COLORS: dict[str, str] = {
    "http_connector": "#4C78A8",
    "mqtt_connector": "#72B7B2",
    "storage": "#F58518",
    "core_logic": "#7B4FB8",
    "send": "#54A24B",
    "configuration": "#9D755D",
}
ERROR_COLOR = "#D62728"
# For kinds wiredflow does not have (plain-Python stages, custom names).
_SPARE_COLORS = [
    "#EECA3B",
    "#FF9DA6",
    "#2F6F9F",
    "#B279A2",
    "#8CD17D",
    "#B6992D",
    "#499894",
    "#86BCB6",
    "#79706E",
]

_INDEX_SUFFIX = re.compile(r"_\d+$")


def stage_kinds(profile: Profile) -> dict[tuple[str, str], str]:
    """(pipeline, stage) -> kind, from the profile's stage statistics."""
    return {(s.pipeline, s.stage): s.kind or _INDEX_SUFFIX.sub("", s.stage) for s in profile.stages}


def kind_of(kinds: dict[tuple[str, str], str], pipeline: str, stage: str) -> str:
    """The kind of a stage; a stage missing from the statistics is named by its name minus `_N`."""
    return kinds.get((pipeline, stage)) or _INDEX_SUFFIX.sub("", stage)


def kind_colors(kinds: Iterable[str]) -> dict[str, str]:
    """A colour for each kind: wiredflow's kinds keep theirs, others take spare colours in name order.

    The same set of kinds always gets the same colours, so two profiles drawn with the
    union of their kinds (before/after) colour a stage alike.
    """
    kinds = list(kinds)
    out: dict[str, str] = {}
    others = sorted({k for k in kinds if k not in KIND_COLORS})
    for k in kinds:
        if k in KIND_COLORS:
            out[k] = KIND_COLORS[k]
    for i, k in enumerate(others):
        if i < len(_SPARE_COLORS):
            out[k] = _SPARE_COLORS[i]
        else:  # past the palette: spread hues by the golden angle
            out[k] = f"hsl({(i * 137.508) % 360:.0f}, 55%, 55%)"
    return out


def profile_colors(profiles: Sequence[Profile]) -> dict[str, str]:
    """Kind -> colour for every stage of these profiles, in the order the stages come.

    Used by every picture of the same profiles, so the table's swatches, the timeline and
    a before/after pair agree.
    """
    kinds: list[str] = []
    for profile in profiles:
        known = stage_kinds(profile)
        kinds.extend(known.values())
        kinds.extend(kind_of(known, s.pipeline, s.stage) for s in profile.timeline)
    return kind_colors(dict.fromkeys(kinds))


def no_call_tree_reason(profile: Profile, pipeline: str, stage: str) -> str:
    """Why a stage has no call stacks, in words a person acts on."""
    found = next((s for s in profile.stages if (s.pipeline, s.stage) == (pipeline, stage)), None)
    if profile.limits.get("call_trees") is False:
        return "call stacks were not asked for (--no-call-tree)"
    if found is not None and found.host != "local":
        return f"it runs on host {found.host}; here it only waits for the answer"
    if found is not None and found.calls + found.sampled_calls < 2:
        return ("it made a single call, and a stage's first call is never sampled; "
                "run it longer (--runs 2 or a longer --duration)")
    return "none of its calls was sampled"
