"""Two profiles side by side: per pipeline cycle and per stage mean, and what regressed."""
from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from wiredprof.profile import Profile
from wiredprof.reports.base import OFFLOAD_EVENTS, offload_counts, offloaded_stages
from wiredprof.reports.text import fmt_s

__all__ = ["Change", "compare_profiles", "render_comparison"]


@dataclass(frozen=True)
class Change:
    """One pipeline's cycle or one stage's mean, before and after."""

    what: str  # "pipeline" | "stage"
    name: str
    old_s: float | None
    new_s: float | None
    old_host: str = ""
    new_host: str = ""

    @property
    def change(self) -> float | None:
        """Relative change (+0.25 is 25 % slower); None when either side is missing or zero."""
        if not self.old_s or self.new_s is None:
            return None
        return self.new_s / self.old_s - 1.0


def compare_profiles(old: Profile, new: Profile) -> list[Change]:
    """Every pipeline and stage present in either profile, in the old one's order."""
    changes: list[Change] = []
    old_p = {p.name: p for p in old.pipelines}
    new_p = {p.name: p for p in new.pipelines}
    for name in list(old_p) + [n for n in new_p if n not in old_p]:
        o, n = old_p.get(name), new_p.get(name)
        changes.append(Change("pipeline", name, o.wall_s if o else None, n.wall_s if n else None))
    old_s = {s.name: s for s in old.stages}
    new_s = {s.name: s for s in new.stages}
    for name in list(old_s) + [n for n in new_s if n not in old_s]:
        a, b = old_s.get(name), new_s.get(name)
        changes.append(
            Change(
                "stage",
                name,
                a.mean_s if a and a.calls else None,
                b.mean_s if b and b.calls else None,
                a.host if a else "",
                b.host if b else "",
            )
        )
    return changes


def _fmt_change(c: Change) -> str:
    if c.old_s is None and c.new_s is not None:
        return "new"
    if c.new_s is None and c.old_s is not None:
        return "gone"
    ch = c.change
    if ch is None:
        return "-"
    if c.new_s and c.old_s and c.new_s < c.old_s:
        return f"{ch * 100:+.1f} % ({c.old_s / c.new_s:.2f}x faster)"
    return f"{ch * 100:+.1f} %"


def render_comparison(old: Profile, new: Profile, changes: list[Change]) -> str:
    """Two tables (pipelines, stages) and the flows' wall times."""
    def opt(x: float | None) -> str:
        return "-" if x is None else fmt_s(x)

    pipes = [[c.name, opt(c.old_s), opt(c.new_s), _fmt_change(c)] for c in changes if c.what == "pipeline"]
    stages = []
    for c in changes:
        if c.what != "stage":
            continue
        host = c.new_host if c.old_host == c.new_host else f"{c.old_host or '-'} -> {c.new_host or '-'}"
        stages.append([c.name, opt(c.old_s), opt(c.new_s), _fmt_change(c), host])
    out = [
        f"old: {old.flow} ({fmt_s(old.wall_s)}, {old.started_at})",
        f"new: {new.flow} ({fmt_s(new.wall_s)}, {new.started_at})",
        "",
        tabulate(pipes, headers=["pipeline", "old cycle", "new cycle", "change"],
                 colalign=("left", "right", "right", "right")),
        "",
        tabulate(stages, headers=["stage", "old mean", "new mean", "change", "host"],
                 colalign=("left", "right", "right", "right", "left")),
    ]
    events = _offload_events(old, new)
    if events:
        out += ["", events]
    return "\n".join(out) + "\n"


def _offload_events(old: Profile, new: Profile) -> str:
    """Retries, local runs, timeouts and link losses of offloaded stages, old -> new ('' when none)."""
    before = {s.name: offload_counts(s) for s in offloaded_stages(old)}
    after = {s.name: offload_counts(s) for s in offloaded_stages(new)}
    names = list(before) + [n for n in after if n not in before]
    if not names:
        return ""
    zero = [0] * len(OFFLOAD_EVENTS)
    rows = []
    for name in names:
        a, b = before.get(name), after.get(name)
        rows.append([name, *(_old_new(x, y) for x, y in zip(a or zero, b or zero))]
                    if a is not None and b is not None else
                    [name, *(f"{x} -> -" if b is None else f"- -> {y}" for x, y in zip(a or zero, b or zero))])
    headers = ["offloaded stage", *(label for label, _ in OFFLOAD_EVENTS.values())]
    return str(tabulate(rows, headers=headers, colalign=("left",) + ("right",) * len(OFFLOAD_EVENTS)))


def _old_new(old: int, new: int) -> str:
    return str(new) if old == new else f"{old} -> {new}"
