"""The timeline of stage calls as a Gantt chart, as SVG text.

One lane per (pipeline, host): a pipeline's calls on the profiled host, and, when a stage
ran elsewhere (offloaded), a lane `pipeline @ HOST` under it holding those calls, so the
offloaded stage is seen leaving its pipeline's lane. Bars are coloured by stage kind;
calls that raised are marked, calls run under the call-tree sampler are hatched.

The same SVG is inlined in the HTML page and embedded in markdown reports (as PNG, through
`wiredprof.testing.chromium`); `render_timelines_svg` stacks several profiles (before/after)
on one time scale.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wiredprof.profile import Profile, TimelineSpan
from wiredprof.reports.base import (
    ERROR_COLOR,
    OFFLOAD_EVENT_ONE,
    OFFLOAD_EVENTS,
    kind_of,
    profile_colors,
    stage_kinds,
)
from wiredprof.reports.text import fmt_s

__all__ = [
    "Bar",
    "Lane",
    "timeline_lanes",
    "render_timeline_svg",
    "render_timelines_svg",
]

_LOCAL_NAMES = {"", "local"}


@dataclass(frozen=True)
class Bar:
    """One stage call, on the sub-row of its lane where it does not overlap another."""

    span: TimelineSpan
    kind: str
    row: int = 0


@dataclass(frozen=True)
class Lane:
    """The calls of one pipeline on one host."""

    pipeline: str
    host: str
    remote: bool
    bars: tuple[Bar, ...]
    rows: int = 1

    @property
    def label(self) -> str:
        return f"{self.pipeline} @ {self.host}" if self.remote else self.pipeline


def _is_remote(profile: Profile, host: str) -> bool:
    return host != profile.host and host not in _LOCAL_NAMES


def timeline_lanes(profile: Profile) -> list[Lane]:
    """The lanes of the chart, in pipeline order, each pipeline's local lane before its remote ones.

    Every pipeline of the profile has a local lane, even one with no call in the
    timeline window; calls of one lane that overlap go to separate sub-rows.
    """
    kinds = stage_kinds(profile)
    order: list[str] = [p.name for p in profile.pipelines]
    for name in [s.pipeline for s in profile.timeline] + [s.pipeline for s in profile.stages]:
        if name not in order:
            order.append(name)
    by_lane: dict[tuple[str, str], list[TimelineSpan]] = {}
    for span in profile.timeline:
        host = profile.host if not _is_remote(profile, span.host) else span.host
        by_lane.setdefault((span.pipeline, host), []).append(span)
    lanes: list[Lane] = []
    for pipeline in order:
        hosts = [profile.host] + sorted(h for (p, h) in by_lane if p == pipeline and h != profile.host)
        for host in hosts:
            spans = sorted(by_lane.get((pipeline, host), []), key=lambda s: (s.start_s, -s.wall_s))
            row_ends: list[float] = []
            bars = []
            for span in spans:
                # A tiny tolerance: back-to-back calls share a row despite float rounding.
                row = next((i for i, end in enumerate(row_ends) if end <= span.start_s + 1e-9), len(row_ends))
                if row == len(row_ends):
                    row_ends.append(0.0)
                row_ends[row] = span.start_s + span.wall_s
                bars.append(Bar(span, kind_of(kinds, span.pipeline, span.stage), row))
            lanes.append(Lane(pipeline, host, host != profile.host, tuple(bars), max(1, len(row_ends))))
    return lanes


# -- drawing -----------------------------------------------------------------------------
_FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"
_LEFT = 190  # lane labels
_RIGHT = 30
_ROW_H = 22
_LANE_PAD = 6
_TITLE_H = 46
_AXIS_H = 38
_CHAR_W = 6.4  # average glyph width at 11-12 px, to decide whether a label fits
_LABEL_CHAR_W = 7.2  # the same for lane labels (12.5 px)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _fit(text: str, max_chars: int) -> str:
    """`text`, shortened in the middle with an ellipsis when longer than `max_chars`."""
    if len(text) <= max_chars:
        return text
    head = (max_chars - 1) // 2 + (max_chars - 1) % 2
    return text[:head] + "…" + text[len(text) - (max_chars - 1 - head):]


def _nice_step(span: float, target_ticks: int) -> float:
    raw = span / max(1, target_ticks)
    mag = 10.0 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _tick_label(t: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{t:.{decimals}f} s"


def _text_color(fill: str) -> str:
    """Dark text on light fills, white on dark ones."""
    m = re.fullmatch(r"#([0-9a-fA-F]{6})", fill)
    if not m:
        return "#1b1b1b"
    r, g, b = (int(m.group(1)[i : i + 2], 16) / 255 for i in (0, 2, 4))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#1b1b1b" if luminance > 0.55 else "#ffffff"


def _time_window(profile: Profile) -> tuple[float, float]:
    """(first second shown, seconds shown): from 0, or from the oldest call kept when some were dropped."""
    if not profile.timeline:
        return 0.0, max(profile.wall_s, 1.0)
    end = max(s.start_s + s.wall_s for s in profile.timeline)
    start = min(s.start_s for s in profile.timeline) if profile.timeline_dropped else 0.0
    return start, max(end - start, 1e-3)


def _subtitle(profile: Profile) -> str:
    parts = [f"{fmt_s(profile.wall_s)} wall", f"{profile.mode} mode", f"status {profile.status}"]
    n = len(profile.timeline)
    if profile.timeline_dropped:
        parts.append(f"last {n} calls shown, {profile.timeline_dropped} earlier dropped")
    else:
        parts.append(f"{n} calls")
    return " · ".join(parts)


def _hover(span: TimelineSpan, remote: bool) -> str:
    where = f"on host {span.host}" if remote else f"on {span.host or 'local'}"
    cpu_pct = f" ({span.cpu_s / span.wall_s * 100:.0f} % of wall)" if span.wall_s > 0 else ""
    lines = [
        f"{span.pipeline}.{span.stage} {where}",
        f"start {span.start_s:.3f} s, wall {fmt_s(span.wall_s)}, cpu {fmt_s(span.cpu_s)}{cpu_pct}",
    ]
    if span.error:
        lines.append("raised an error")
    if span.sampled:
        lines.append("sampled for call stacks (kept out of the timing statistics)")
    return "\n".join(lines)


class _Canvas:
    """Collects SVG elements for one image of one or more panels."""

    def __init__(self, width: int, ids: str) -> None:
        self.width = width
        self.ids = ids
        self.plot_w = width - _LEFT - _RIGHT
        self.parts: list[str] = []

    def x(self, t: float, t0: float, span: float) -> float:
        return _LEFT + (t - t0) / span * self.plot_w

    def panel(
        self,
        y: float,
        profile: Profile,
        lanes: list[Lane],
        title: str,
        t0: float,
        span: float,
        colors: dict[str, str],
    ) -> float:
        """Draw a title, the lanes and the time axis from height `y`; return the height below it."""
        p = self.parts
        p.append(f'<g class="panel" data-flow="{_esc(profile.flow)}">')
        if title:
            p.append(
                f'<text x="16" y="{_n(y + 20)}" font-size="15" font-weight="600" fill="#1b1b1b">'
                f"{_esc(title)}</text>"
            )
            y += 17
        p.append(
            f'<text x="16" y="{_n(y + 20)}" font-size="12" fill="#5f6368">{_esc(_subtitle(profile))}</text>'
        )
        top = y + _TITLE_H - 17
        lane_tops = []
        cur = top
        for lane in lanes:
            lane_tops.append(cur)
            cur += lane.rows * _ROW_H + 2 * _LANE_PAD
        bottom = cur
        step = _nice_step(span, max(4, self.plot_w // 90))
        # Lane backgrounds and labels.
        for i, (lane, ly) in enumerate(zip(lanes, lane_tops)):
            h = lane.rows * _ROW_H + 2 * _LANE_PAD
            fill = "#fdf1dc" if lane.remote else ("#f4f6f8" if i % 2 == 0 else "#ffffff")
            p.append(
                f'<rect class="lane" data-lane="{_esc(lane.label)}" x="{_LEFT}" y="{_n(ly)}" '
                f'width="{self.plot_w}" height="{h}" fill="{fill}"/>'
            )
            cy = ly + h / 2 + 4
            # Long names are shortened to fit the label column; the full name shows on hover.
            budget = int((_LEFT - 20) / _LABEL_CHAR_W)
            hover = f"<title>{_esc(lane.label)}</title>"
            if lane.remote:
                host = _fit(lane.host, max(4, budget // 3))
                name = _fit(lane.pipeline, max(4, budget - len(host) - 3))
                p.append(f'<rect x="{_LEFT - 4}" y="{_n(ly)}" width="4" height="{h}" fill="#e8a33d"/>')
                p.append(
                    f'<text x="{_LEFT - 12}" y="{_n(cy)}" text-anchor="end" font-size="12.5" fill="#1b1b1b">'
                    f'{hover}{_esc(name)} <tspan font-weight="700" fill="#b86e00">@ {_esc(host)}</tspan>'
                    "</text>"
                )
            else:
                p.append(
                    f'<text x="{_LEFT - 12}" y="{_n(cy)}" text-anchor="end" font-size="12.5" '
                    f'fill="#1b1b1b">{hover}{_esc(_fit(lane.pipeline, budget))}</text>'
                )
        # Grid and axis.
        first = math.ceil(t0 / step - 1e-9) * step
        k = 0
        while first + k * step <= t0 + span + 1e-9:
            t = first + k * step
            x = self.x(t, t0, span)
            p.append(
                f'<line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom + 4)}" stroke="#d5d9de" '
                'stroke-width="1"/>'
            )
            p.append(
                f'<text class="tick" x="{_n(x)}" y="{_n(bottom + 18)}" text-anchor="middle" font-size="11" '
                f'fill="#5f6368">{_esc(_tick_label(t, step))}</text>'
            )
            k += 1
        p.append(
            f'<line x1="{_LEFT}" y1="{_n(bottom)}" x2="{_LEFT + self.plot_w}" y2="{_n(bottom)}" '
            'stroke="#80868b" stroke-width="1"/>'
        )
        p.append(
            f'<text x="{_LEFT + self.plot_w}" y="{_n(bottom + 33)}" text-anchor="end" font-size="11" '
            'fill="#5f6368">seconds since the flow started</text>'
        )
        if not profile.timeline:
            p.append(
                f'<text x="{_n(_LEFT + self.plot_w / 2)}" y="{_n((top + bottom) / 2 + 4)}" '
                'text-anchor="middle" font-size="12" fill="#5f6368">no stage call in the timeline</text>'
            )
        # Bars, on top of the grid.
        for lane, ly in zip(lanes, lane_tops):
            for bar in lane.bars:
                self._bar(bar, lane, ly + _LANE_PAD + bar.row * _ROW_H, t0, span, colors)
        self._offload_marks(profile, lanes, lane_tops, t0, span)
        p.append("</g>")
        return bottom + _AXIS_H

    def _offload_marks(self, profile: Profile, lanes: list[Lane], tops: list[float], t0: float, span: float) -> None:
        """A small diamond at the top of the stage's lane for each retry, local run, timeout, link loss."""
        where = {(lane.pipeline, lane.host): top for lane, top in zip(lanes, tops)}
        local = {lane.pipeline: top for lane, top in zip(lanes, tops) if not lane.remote}
        for ev in profile.offload_events:
            top = where.get((ev.pipeline, ev.host), local.get(ev.pipeline))
            if top is None or not t0 <= ev.start_s <= t0 + span:
                continue
            color = OFFLOAD_EVENTS.get(ev.what, (ev.what, "#555555"))[1]
            said = OFFLOAD_EVENT_ONE.get(ev.what, ev.what)
            x, y = self.x(ev.start_s, t0, span), top + 3
            self.parts.append(
                f'<g class="offload-event" data-what="{_esc(ev.what)}" data-stage="{_esc(ev.stage)}">'
                f"<title>{_esc(f'{ev.pipeline}.{ev.stage} on {ev.host}: {said} at {ev.start_s:.3f} s')}</title>"
                f'<path d="M{_n(x)} {_n(y - 5)} L{_n(x + 5)} {_n(y)} L{_n(x)} {_n(y + 5)} L{_n(x - 5)} {_n(y)} Z" '
                f'fill="{color}" stroke="#fff" stroke-width="1"/></g>'
            )

    def _bar(self, bar: Bar, lane: Lane, y: float, t0: float, span: float, colors: dict[str, str]) -> None:
        s = bar.span
        x0 = self.x(max(s.start_s, t0), t0, span)
        w = max(2.0, self.x(s.start_s + s.wall_s, t0, span) - x0)
        h = _ROW_H - 4
        y += 2
        fill = colors.get(bar.kind, "#999999")
        p = self.parts
        cls = "bar" + (" error" if s.error else "") + (" sampled" if s.sampled else "")
        p.append(
            f'<g class="{cls}" data-lane="{_esc(lane.label)}" data-pipeline="{_esc(s.pipeline)}" '
            f'data-stage="{_esc(s.stage)}" data-host="{_esc(s.host)}" data-kind="{_esc(bar.kind)}">'
        )
        p.append(f"<title>{_esc(_hover(s, lane.remote))}</title>")
        stroke = ""
        if s.error:
            stroke = f' stroke="{ERROR_COLOR}" stroke-width="2.5"'
        elif s.sampled:
            stroke = ' stroke="#1b1b1b" stroke-width="1.2" stroke-dasharray="3 2"'
        p.append(
            f'<rect x="{_n(x0)}" y="{_n(y)}" width="{_n(w)}" height="{h}" rx="2" fill="{fill}"{stroke}/>'
        )
        if s.sampled:
            p.append(
                f'<rect x="{_n(x0)}" y="{_n(y)}" width="{_n(w)}" height="{h}" rx="2" '
                f'fill="url(#{self.ids}-hatch)"/>'
            )
        label_w = len(s.stage) * _CHAR_W + 8
        if w >= label_w:
            # A halo in the bar's colour keeps the label readable over the hatching.
            p.append(
                f'<text x="{_n(x0 + 4)}" y="{_n(y + h / 2 + 4)}" font-size="11" fill="{_text_color(fill)}" '
                f'stroke="{fill}" stroke-width="3" paint-order="stroke" pointer-events="none">'
                f"{_esc(s.stage)}</text>"
            )
        if s.error:
            cx, cy = x0 + w, y
            p.append(
                f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="6" fill="{ERROR_COLOR}" stroke="#fff" '
                'stroke-width="1"/>'
            )
            p.append(
                f'<text x="{_n(cx)}" y="{_n(cy + 3.5)}" text-anchor="middle" font-size="10" '
                'font-weight="700" '
                'fill="#fff" pointer-events="none">!</text>'
            )
        p.append("</g>")

    def legend(self, y: float, colors: dict[str, str], marks: set[str]) -> float:
        """Swatches for kinds, then for the marks in use; wraps to new lines; return the height below it."""
        items: list[tuple[str, str]] = []
        for kind, color in colors.items():
            items.append((f'<rect x="0" y="-10" width="14" height="12" rx="2" fill="{color}"/>', kind))
        if "sampled" in marks:
            items.append(
                (
                    f'<rect x="0" y="-10" width="14" height="12" rx="2" fill="#9aa0a6" stroke="#1b1b1b" '
                    f'stroke-width="1.2" stroke-dasharray="3 2"/><rect x="0" y="-10" width="14" height="12" '
                    f'fill="url(#{self.ids}-hatch)"/>',
                    "sampled for call stacks (kept out of the timings)",
                )
            )
        if "error" in marks:
            items.append(
                (
                    '<rect x="0" y="-10" width="14" height="12" rx="2" fill="#9aa0a6" '
                    f'stroke="{ERROR_COLOR}" '
                    f'stroke-width="2.5"/><circle cx="14" cy="-10" r="4.5" fill="{ERROR_COLOR}"/>',
                    "raised an error",
                )
            )
        for what in sorted(m for m in marks if m in OFFLOAD_EVENTS):
            label, color = OFFLOAD_EVENTS[what]
            items.append((f'<path d="M7 -9 L12 -4 L7 1 L2 -4 Z" fill="{color}"/>', f"offload: {label}"))
        if "remote" in marks:
            items.append(
                (
                    '<rect x="0" y="-10" width="14" height="12" fill="#fdf1dc" stroke="#e8a33d"/>',
                    "lane on another host (offloaded stage)",
                )
            )
        p = self.parts
        p.append('<g class="legend">')
        x, line_y = float(_LEFT), y + 16
        for swatch, text in items:
            w = 14 + 8 + len(text) * _CHAR_W + 22
            if x + w > self.width - _RIGHT and x > _LEFT:
                x, line_y = float(_LEFT), line_y + 20
            p.append(
                f'<g transform="translate({_n(x)},{_n(line_y)})">{swatch}'
                f'<text x="22" y="0" font-size="12" fill="#3c4043">{_esc(text)}</text></g>'
            )
            x += w
        p.append("</g>")
        return line_y + 14

    def svg(self, height: float, label: str) -> str:
        h = math.ceil(height)
        defs = (
            f'<defs><pattern id="{self.ids}-hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
            'patternTransform="rotate(45)"><rect width="2.5" height="6" fill="#ffffff" fill-opacity="0.6"/>'
            "</pattern></defs>"
        )
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="wiredprof-timeline" width="{self.width}" '
            f'height="{h}" '
            f'viewBox="0 0 {self.width} {h}" font-family="{_esc(_FONT)}" role="img" '
            f'aria-label="{_esc(label)}">'
            f'<rect width="{self.width}" height="{h}" fill="#ffffff"/>{defs}{"".join(self.parts)}</svg>'
        )


def render_timelines_svg(panels: Sequence[tuple[str, Profile]], *, width: int = 1100, ids: str = "wp") -> str:
    """Several profiles one above the other, as (title, profile), on one time scale and one legend.

    For before/after pictures: the same seconds per pixel in every panel, so a shorter
    run draws shorter, and one colour per stage kind across all of them. `ids` prefixes
    the SVG ids, for pages that inline more than one chart.
    """
    if not panels:
        raise ValueError("no profile to draw")
    lanes = [timeline_lanes(p) for _, p in panels]
    colors = profile_colors([p for _, p in panels])
    windows = [_time_window(p) for _, p in panels]
    span = max(w[1] for w in windows)
    canvas = _Canvas(width, ids)
    y = 8.0
    for (title, profile), lane_list, (t0, _) in zip(panels, lanes, windows):
        y = canvas.panel(y, profile, lane_list, title, t0, span, colors) + 6
    spans = [s for _, p in panels for s in p.timeline]
    marks = {"sampled"} if any(s.sampled for s in spans) else set()
    marks |= {"error"} if any(s.error for s in spans) else set()
    marks |= {"remote"} if any(lane.remote for lane_list in lanes for lane in lane_list) else set()
    marks |= {ev.what for _, p in panels for ev in p.offload_events}
    y = canvas.legend(y, colors, marks)
    label = "Timeline of stage calls: " + "; ".join(title or p.flow for title, p in panels)
    return canvas.svg(y + 6, label)


def render_timeline_svg(
    profile: Profile, *, title: str | None = None, width: int = 1100, ids: str = "wp"
) -> str:
    """The timeline of one profile as a standalone SVG document.

    `title` defaults to the flow's file; an empty title leaves only the line of facts.
    """
    return render_timelines_svg(
        [(title if title is not None else profile.flow, profile)], width=width, ids=ids
    )
