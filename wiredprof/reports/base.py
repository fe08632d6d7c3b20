"""What the picture-drawing reports share: a stage's kind and the colour it is drawn in.

The HTML page, the timeline image and the before/after pictures colour a stage by its
kind (`storage` and `storage_2` alike), so one legend reads for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from wiredprof.profile import Profile, StageStats

__all__ = [
    "KIND_COLORS", "ERROR_COLOR", "stage_kinds", "kind_of", "kind_colors", "profile_colors", "no_call_tree_reason",
    "OFFLOAD_EVENTS", "OFFLOAD_EVENT_ONE", "offloaded_stages", "offload_counts", "offload_summary",
]

# What can happen to a call of an offloaded stage, as the profile counts it, and how reports say it.
OFFLOAD_EVENTS: dict[str, tuple[str, str]] = {
    "retries": ("retries", "#1f77b4"),  # re-sent: the host had not started it
    "retries_after_start": ("retries after start", "#9467bd"),  # idempotent stages only
    "fallbacks": ("run locally", "#2ca02c"),
    "timeouts": ("timeouts", "#ff7f0e"),
    "link_losses": ("link losses", "#8c564b"),
}
# One event, as a timeline mark's hover text says it.
OFFLOAD_EVENT_ONE = {
    "retries": "retried (the host had not started the call)",
    "retries_after_start": "retried after the host started it (idempotent)",
    "fallbacks": "run locally instead",
    "timeouts": "timed out",
    "link_losses": "link lost",
}


def offloaded_stages(profile: Profile) -> list[StageStats]:
    """The stages that ran on another host."""
    return [s for s in profile.stages if s.host not in ("", "local", profile.host)]


def offload_counts(stage: StageStats) -> list[int]:
    """The stage's offload event counts, in `OFFLOAD_EVENTS` order."""
    return [int(getattr(stage, key, 0)) for key in OFFLOAD_EVENTS]


def offload_summary(stage: StageStats) -> str:
    """Like "2 retries, 1 run locally" (the non-zero counts), or "none"."""
    parts = [f"{n} {label}" for n, (label, _) in zip(offload_counts(stage), OFFLOAD_EVENTS.values()) if n]
    return ", ".join(parts) or "none"


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
