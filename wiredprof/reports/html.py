"""The profile as one self-contained HTML page: header, bottleneck, tables, timeline, call tree.

Everything is inline (CSS, SVG; no script, no font or image loaded from anywhere), so
the page opens from a file, an e-mail or a CI artifact without a network. The call tree
is drawn by `CallTreeHTMLRenderer`, a pyinstrument renderer that writes nested
`<details>`: pyinstrument's own HTML app fetches web fonts, so it is not used here.
All text from the profile (stage names, error messages, frames) is escaped.
"""

from __future__ import annotations

import html
from typing import Any

from pyinstrument import processors
from pyinstrument.frame import Frame, FrameGroup
from pyinstrument.renderers.base import FrameRenderer, ProcessorList
from pyinstrument.session import Session

from wiredprof import __version__
from wiredprof.analysis import classify, utilisation
from wiredprof.profile import Bottleneck, CallTree, Profile
from wiredprof.reports.base import (
    ERROR_COLOR,
    OFFLOAD_EVENTS,
    kind_of,
    no_call_tree_reason,
    offload_counts,
    offloaded_stages,
    profile_colors,
    stage_kinds,
)
from wiredprof.reports.text import fmt_pct, fmt_s
from wiredprof.reports.timeline import render_timeline_svg

__all__ = ["render_html", "CallTreeHTMLRenderer"]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class CallTreeHTMLRenderer(FrameRenderer):
    """pyinstrument's call tree as nested `<details>`: hot frames open, cold ones folded.

    Uses the console renderer's processors and its way of folding library frames into
    "[N frames hidden]", so it reads like `pyinstrument`'s terminal output.
    """

    output_file_extension = "html"

    def __init__(self, open_above: float = 0.1, processor_options: dict[str, Any] | None = None) -> None:
        super().__init__(processor_options=processor_options)
        self.open_above = open_above
        self._root_time = 1.0

    def default_processors(self) -> ProcessorList:
        return [
            processors.remove_importlib,
            processors.remove_tracebackhide,
            processors.merge_consecutive_self_time,
            processors.aggregate_repeated_calls,
            processors.remove_irrelevant_nodes,
            processors.remove_unnecessary_self_time_nodes,
            processors.remove_first_pyinstrument_frames_processor,
            processors.group_library_frames_processor,
        ]

    def render(self, session: Session) -> str:
        frame = self.preprocess(session.root_frame())
        if frame is None:
            return '<p class="muted">No samples were recorded.</p>'
        self._root_time = frame.time or 1.0
        return f'<div class="calltree">{self._frame(frame)}</div>'

    # Which frames of a library group to show: the group's entry, its exits, and any
    # frame with real self time (the same rule as pyinstrument's console renderer).
    def _shown_in_group(self, frame: Frame) -> bool:
        group = frame.group
        assert group is not None
        return (
            group.root is frame or frame.total_self_time > 0.2 * self._root_time or frame in group.exit_frames
        )

    def _group_folded(self, group: FrameGroup) -> bool:
        return sum(1 for f in group.frames if not self._shown_in_group(f)) >= 2

    def _shown(self, frame: Frame) -> bool:
        if frame.group is not None and self._group_folded(frame.group):
            return self._shown_in_group(frame)
        return True

    def _line(self, frame: Frame) -> str:
        share = frame.time / self._root_time
        heat = "hot" if share > 0.6 else "warm" if share > 0.2 else "mild" if share > 0.05 else "cold"
        name = f"{frame.class_name}.{frame.function}" if frame.class_name else frame.function
        app = " app" if frame.is_application_code else ""
        pos = frame.code_position_short() or ""
        return (
            f'<span class="ct-time {heat}">{frame.time:.3f}</span>'
            f'<span class="ct-share" title="{share * 100:.1f} % of the sampled time">'
            f'<i style="width:{min(100.0, share * 100):.1f}%"></i></span>'
            f'<span class="ct-fn{app}">{_e(name)}</span> <span class="ct-pos">{_e(pos)}</span>'
        )

    def _frame(self, frame: Frame) -> str:
        kids = "".join(self._frame(child) for child in frame.children)
        if not self._shown(frame):
            return kids  # folded into its library group: its children still show
        group = frame.group
        if group is not None and group.root is frame and self._group_folded(group):
            hidden = [f for f in group.frames if not self._shown_in_group(f)]
            libs = []
            for f in hidden:
                lib = (f.file_path_short or "").replace("\\", "/").split("/")[0].split(".")[0]
                if lib and lib not in libs:
                    libs.append(lib)
            kids = (
                f'<div class="ct-hidden">[{len(hidden)} frames hidden] {_e(", ".join(libs[:4]))}</div>' + kids
            )
        if not kids:
            return f'<div class="ct-leaf">{self._line(frame)}</div>'
        is_open = " open" if frame.time >= self.open_above * self._root_time else ""
        summary = f"<summary>{self._line(frame)}</summary>"
        return f'<details{is_open}>{summary}<div class="ct-kids">{kids}</div></details>'


# -- page sections ----------------------------------------------------------------------
def _header(p: Profile) -> str:
    facts = [
        ("status", f'<span class="status {_e(p.status)}">{_e(p.status)}</span>'),
        ("wall time", _e(fmt_s(p.wall_s))),
        *([("start-up", _e(fmt_s(p.startup_s)))] if p.startup_s is not None else []),
        ("mode", _e(p.mode)),
        ("host", _e(p.host)),
    ]
    if p.started_at:
        facts.append(("started", _e(p.started_at)))
    bounds = []
    if p.limits.get("duration_s"):
        bounds.append(f"--duration {p.limits['duration_s']:g}")
    if p.limits.get("runs"):
        bounds.append(f"--runs {p.limits['runs']}")
    if bounds:
        facts.append(("bounded by", _e(" ".join(bounds))))
    if p.argv:
        facts.append(("argv", f"<code>{_e(' '.join(p.argv))}</code>"))
    dl = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
    out = [f'<header><h1>wiredprof <span class="flow">{_e(p.flow)}</span></h1><dl class="facts">{dl}</dl>']
    if p.error is not None:
        out.append(f'<p class="flow-error">The flow failed: {_e(p.error.one_line())}</p>')
    if p.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in p.notes) + "</ul>")
    if p.missing:
        out.append('<ul class="notes missing">' + "".join(
            f"<li>missing: {_e(what)} ({_e(why)})</li>" for what, why in p.missing.items()) + "</ul>")
    out.append("</header>")
    return "".join(out)


_BOUND_TEXT = {
    "cpu": "CPU-bound: a faster CPU shortens it",
    "wait": "wait-bound (I/O, sleep): a faster CPU will not help",
    "gil": "GIL-bound: waits while other threads run Python",
    "idle": "idle: limited by the flow's schedule, not by a stage",
}


def _bottleneck(p: Profile) -> str:
    b = p.bottleneck
    if b is None:
        return (
            '<section class="bottleneck none"><h2>Bottleneck</h2>'
            "<p>None found: no stage finished a call.</p></section>"
        )
    evidence = [
        ("share of the pipeline's cycle", fmt_pct(b.share_of_cycle), b.share_of_cycle),
        ("cpu / wall", f"{b.cpu_ratio:.2f}", b.cpu_ratio),
        ("waiting for the GIL", fmt_pct(b.gil_wait_ratio), b.gil_wait_ratio),
    ]
    rows = "".join(
        f'<tr><th>{_e(k)}</th><td class="num">{_e(v)}</td><td class="meter"><i '
        f'style="width:{min(1.0, max(0.0, x)) * 100:.0f}%">'
        "</i></td></tr>"
        for k, v, x in evidence
    )
    bound = _BOUND_TEXT.get(b.bound, b.bound)
    comp = ""
    if b.competitors:
        items = "".join(
            f"<li>{_e(c.name)}: {_e(fmt_s(c.cpu_s))} CPU{' (framework)' if c.framework else ''}</li>"
            for c in b.competitors
        )
        title = "Busy loops burning CPU meanwhile" if b.bound == "idle" else "Who held the GIL meanwhile"
        comp = f'<div class="competitors"><h3>{title}</h3><ul>{items}</ul></div>'
    return (
        '<section class="bottleneck"><h2>Bottleneck</h2>'
        f'<p class="bn-name">{_e(b.pipeline)}.<b>{_e(b.stage)}</b> <span class="bound '
        f'{_e(b.bound)}">{_e(bound)}</span></p>'
        f'<p class="bn-reason">{_e(b.reason)}</p>'
        f'<table class="evidence">{rows}</table>{comp}</section>'
    )


def _table(headers: list[str], rows: list[str], numeric: set[int]) -> str:
    ths = "".join(f"<th{' class=num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
    return f'<table class="data"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _flow_tag(p: Profile, number: int) -> str:
    """`flow #N` before a pipeline or stage name, when the script ran several flows."""
    return f'<span class="flow">flow #{number}</span> ' if len(p.flows) > 1 else ""


def _flows(p: Profile) -> str:
    """The script's `launch_flow` calls (only when there are several)."""
    if len(p.flows) < 2:
        return ""
    rows = [
        f"<tr><td>flow #{f.number}</td><td class=\"num\">{_e(fmt_s(f.start_s))}</td>"
        f"<td class=\"num\">{_e(fmt_s(f.wall_s))}{'' if f.ended else ' (running)'}</td><td>{_e(f.mode)}</td>"
        f"<td>{_e(', '.join(f.pipelines))}</td></tr>"
        for f in p.flows
    ]
    return (f"<section><h2>Flows</h2><p class=\"caption\">{len(p.flows)} launch_flow calls in this script, "
            "kept apart: a pipeline name an earlier flow used gets #N.</p>"
            + _table(["flow", "started", "ran", "mode", "pipelines"], rows, {1, 2}) + "</section>")


def _pipelines(p: Profile) -> str:
    b = p.bottleneck
    rows = []
    for pl in sorted(p.pipelines, key=lambda x: (x.flow, -x.wall_s)):
        cls = ' class="hl"' if b is not None and pl.name == b.pipeline else ""
        busy = utilisation(pl, p)
        cells = [
            f"<td>{_flow_tag(p, pl.flow)}{_e(pl.name)}</td>",
            f'<td class="num">{_e(fmt_s(pl.wall_s))}</td>',
            f'<td class="num">{pl.runs}</td>',
            f'<td class="num">{_e(fmt_pct(pl.share))} <span class="minibar"><i '
            f'style="width:{min(1.0, pl.share) * 100:.0f}%">'
            "</i></span></td>",
            f'<td class="num">{_e(fmt_pct(busy))} <span class="minibar"><i '
            f'style="width:{min(1.0, busy) * 100:.0f}%">'
            "</i></span></td>",
            f'<td class="num">{_e(fmt_s(pl.cpu_s))}</td>',
            f'<td class="num">{_e(fmt_s(pl.framework_cpu_s))}</td>',
            f'<td class="num{" err" if pl.errors else ""}">{pl.errors}</td>',
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        "<section><h2>Pipelines</h2>"
        + _table(
            ["pipeline", "cycle", "cycles", "share", "busy", "stage cpu", "framework cpu", "errors"],
            rows,
            {1, 2, 3, 4, 5, 6, 7},
        )
        + '<p class="muted">busy: the share of the run the pipeline spent in its cycles (utilisation); '
        "a flow whose pipelines are all busy half the time or less is limited by its schedule.</p>"
        + "</section>"
    )


_STAGE_HEADERS = ["stage", "kind", "host", "calls", "total", "mean", "p95", "cpu", "wait", "gil wait",
                  "bound", "errors"]


def _stages(p: Profile, colors: dict[str, str]) -> str:
    b = p.bottleneck
    kinds = stage_kinds(p)
    rows = []
    for s in p.stages:
        cls = ' class="hl"' if b is not None and (s.pipeline, s.stage) == (b.pipeline, b.stage) else ""
        bound = classify(s).bound if s.calls else "-"
        calls = f"{s.calls}" + (
            f' <span class="sampled" title="more calls sampled for call stacks, kept out of '
            f'the timings">+{s.sampled_calls}s</span>'
            if s.sampled_calls
            else ""
        )
        host = _e(s.host) if s.host in ("", "local", p.host) else f'<span class="remote">{_e(s.host)}</span>'
        color = colors.get(kind_of(kinds, s.pipeline, s.stage), "#999")
        cells = [
            f'<td>{_flow_tag(p, s.flow)}<span class="swatch" '
            f'style="background:{color}"></span>{_e(s.pipeline)}.<b>{_e(s.stage)}</b></td>',
            f"<td>{_e(s.kind)}</td>",
            f"<td>{host}</td>",
            f'<td class="num">{calls}</td>',
            *(
                f'<td class="num">{_e(fmt_s(v))}</td>'
                for v in (s.total_s, s.mean_s, s.p95_s, s.cpu_s, s.wait_s, s.gil_wait_s)
            ),
            f"<td>{_e(bound)}</td>",
            f'<td class="num{" err" if s.errors else ""}">{s.errors}</td>',
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    note = ""
    if any(s.sampled_calls for s in p.stages):
        note = (
            '<p class="caption">calls N <span class="sampled">+Ms</span>: N timed calls, M more sampled for '
            "call stacks and kept out of the timings (a profiler slows the code it watches).</p>"
        )
    return (
        "<section><h2>Stages</h2>"
        + _table(_STAGE_HEADERS, rows, {3, 4, 5, 6, 7, 8, 9, 11})
        + note
        + "</section>"
    )


def _offloads(p: Profile) -> str:
    """Per offloaded stage: retries, local runs, timeouts, link losses (nothing when no stage is offloaded)."""
    stages = offloaded_stages(p)
    if not stages:
        return ""
    rows = []
    for s in stages:
        counts = "".join(f'<td class="num{" err" if n else ""}">{n}</td>' for n in offload_counts(s))
        rows.append(f'<tr><td>{_e(s.name)}</td><td><span class="remote">{_e(s.host)}</span></td>{counts}</tr>')
    headers = ["offloaded stage", "host", *(label for label, _ in OFFLOAD_EVENTS.values())]
    return (
        "<section><h2>Offloaded stages</h2>"
        + _table(headers, rows, set(range(2, 2 + len(OFFLOAD_EVENTS))))
        + '<p class="caption">retries: re-sent, the host had not started the call; retries after start: '
        "idempotent stages only; each event is also marked on the timeline.</p></section>"
    )


def _timeline(p: Profile) -> str:
    svg = render_timeline_svg(p, title="").replace(' xmlns="http://www.w3.org/2000/svg"', "", 1)
    remote = sorted({s.host for s in p.timeline if s.host not in ("", "local", p.host)})
    where = (
        f" Calls that ran on another host ({_e(', '.join(remote))}) sit in a lane of their own under their "
        "pipeline."
        if remote
        else ""
    )
    dropped = (
        f" Only the most recent {len(p.timeline)} calls are kept; {p.timeline_dropped} earlier ones were "
        "dropped."
        if p.timeline_dropped
        else ""
    )
    return (
        f'<section><h2>Timeline</h2><figure class="timeline">{svg}<figcaption>One lane per pipeline, one '
        "bar per stage call, coloured by stage kind; hover a bar for its timings."
        f"{where}{dropped}</figcaption></figure></section>"
    )


def _no_tree_reason(p: Profile, b: Bottleneck) -> str:
    why = no_call_tree_reason(p, b.pipeline, b.stage)
    return f'<p class="muted">No call stacks for {_e(b.pipeline)}.{_e(b.stage)}: {_e(why)}.</p>'


def _tree_body(tree: CallTree) -> str:
    if tree.session:
        try:
            return CallTreeHTMLRenderer().render(Session.from_json(tree.session))
        except Exception:  # a session saved by another pyinstrument version: show the text instead
            pass
    return f'<pre class="ct-text">{_e(tree.text)}</pre>'


def _tree_caption(tree: CallTree) -> str:
    calls = ", ".join(f"#{n}" for n in tree.sampled_calls) or "-"
    return (
        f'<p class="caption">pyinstrument, {_e(fmt_s(tree.duration_s))} sampled over call {_e(calls)}; '
        "those calls are kept out of the timings above. Seconds per frame; click a line to fold or unfold "
        "it.</p>"
    )


def _call_trees(p: Profile) -> str:
    b = p.bottleneck
    out = ["<section><h2>Call stacks</h2>"]
    main = p.call_tree(f"{b.pipeline}.{b.stage}") if b is not None else None
    if b is None:
        out.append('<p class="muted">No bottleneck, so no call stacks to show.</p>')
    elif main is None:
        out.append(_no_tree_reason(p, b))
    else:
        out.append(f"<h3>{_e(main.name)} (the bottleneck)</h3>{_tree_caption(main)}{_tree_body(main)}")
    others = [t for t in p.call_trees if t is not main]
    for t in others:
        out.append(
            f'<details class="other-tree"><summary>{_e(t.name)}</summary>{_tree_caption(t)}{_tree_body(t)}'
            "</details>"
        )
    out.append("</section>")
    return "".join(out)


def _errors(p: Profile) -> str:
    failing = [s for s in p.stages if s.errors]
    if not failing and p.error is None:
        return ""
    out = ['<section class="errors"><h2>Errors</h2>']
    for s in failing:
        last = s.last_error.one_line() if s.last_error else "?"
        out.append(
            f"<h3>{_e(s.name)}: {s.errors} failed call{'s' if s.errors != 1 else ''}</h3><p>last: "
            f"<code>{_e(last)}</code></p>"
        )
        if s.last_error and s.last_error.traceback:
            out.append(f"<pre>{_e(s.last_error.traceback.rstrip())}</pre>")
    if p.error is not None:
        out.append(f"<h3>the flow</h3><p><code>{_e(p.error.one_line())}</code></p>")
        if p.error.traceback:
            out.append(f"<pre>{_e(p.error.traceback.rstrip())}</pre>")
    out.append("</section>")
    return "".join(out)


_CSS = f"""
:root {{ --fg:#1b1b1b; --muted:#5f6368; --line:#dadce0; --hl:#fff6dc; --err:{ERROR_COLOR}; }}
* {{ box-sizing:border-box; }}
body {{ margin:0; font:14px/1.45 system-ui,-apple-system,'Segoe UI','DejaVu Sans',Helvetica,Arial,sans-serif;
  color:var(--fg); background:#f7f8fa; }}
main {{ max-width:1180px; margin:0 auto; padding:20px 24px 40px; }}
header h1 {{ font-size:22px; margin:0 0 10px; font-weight:600; }}
header h1 .flow {{ font-family:ui-monospace,'DejaVu Sans Mono',monospace; font-weight:500; font-size:19px; }}
.facts {{ display:flex; flex-wrap:wrap; gap:6px 22px; margin:0; }}
.facts div {{ display:flex; gap:6px; align-items:baseline; }}
.facts dt {{ color:var(--muted); font-size:12px; }} .facts dd {{ margin:0; font-weight:600; }}
.status {{ padding:1px 8px; border-radius:10px; color:#fff; background:#1e8e3e; }}
.status.failed {{ background:var(--err); }} .status.stopped {{ background:#e37400; }}
.notes {{ margin:10px 0 0; padding-left:18px; color:var(--muted); }}
.flow-error {{ color:var(--err); font-weight:600; }}
section {{ background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 18px;
  margin-top:16px; }}
h2 {{ font-size:16px; margin:0 0 10px; }} h3 {{ font-size:14px; margin:14px 0 6px; }}
.bottleneck {{ border-left:5px solid #7b4fb8; }}
.bn-name {{ font-family:ui-monospace,'DejaVu Sans Mono',monospace; font-size:18px; margin:0 0 4px; }}
.bound {{ font-family:system-ui,sans-serif; font-size:12px; padding:2px 8px; border-radius:10px;
  margin-left:8px;
  background:#e8eaed; vertical-align:middle; }}
.bound.cpu {{ background:#e6dcf5; }} .bound.wait {{ background:#dceefc; }}
  .bound.gil {{ background:#fde2c4; }}
.bn-reason {{ margin:4px 0 8px; }}
.evidence th {{ text-align:left; font-weight:normal; color:var(--muted); padding:2px 14px 2px 0; }}
.evidence td.num {{ text-align:right; padding-right:10px; font-variant-numeric:tabular-nums; }}
.meter, .minibar {{ display:inline-block; width:160px; height:8px; background:#eceff1; border-radius:4px;
  overflow:hidden; vertical-align:middle; }}
td.meter {{ display:table-cell; background:none; }}
td.meter i {{ display:block; height:8px; border-radius:4px; background:#7b4fb8; }}
.minibar {{ width:60px; }} .minibar i {{ display:block; height:8px; background:#4c78a8; }}
table.data {{ border-collapse:collapse; min-width:70%; font-size:13px; }}
table.data th {{ text-align:left; color:var(--muted); font-weight:600; border-bottom:1px solid var(--line);
  padding:5px 8px; white-space:nowrap; }}
table.data td {{ padding:4px 8px; border-bottom:1px solid #f0f1f3; white-space:nowrap; }}
.num {{ text-align:right; font-variant-numeric:tabular-nums; }}
th.num {{ text-align:right; }}
tr.hl td {{ background:var(--hl); }}
td.err {{ color:var(--err); font-weight:700; }}
.swatch {{ display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }}
.remote {{ background:#fdf1dc; border:1px solid #e8a33d; border-radius:3px; padding:0 5px; font-weight:600; }}
.sampled {{ color:#7b4fb8; font-size:11px; }}
.caption, figcaption, .muted {{ color:var(--muted); font-size:12.5px; }}
figure.timeline {{ margin:0; }} figure.timeline svg {{ width:100%; height:auto; display:block; }}
.calltree {{ font:12.5px/1.6 ui-monospace,'DejaVu Sans Mono',Menlo,monospace; overflow-x:auto; }}
.calltree details > summary {{ cursor:pointer; list-style:none; white-space:nowrap; }}
.calltree details > summary::-webkit-details-marker {{ display:none; }}
.calltree details > summary::before {{ content:'\\25B8'; display:inline-block; width:1.1em;
  color:var(--muted); }}
.calltree details[open] > summary::before {{ content:'\\25BE'; }}
.ct-leaf {{ white-space:nowrap; padding-left:1.1em; }}
.ct-kids {{ margin-left:0.55em; padding-left:0.75em; border-left:1px dotted #c4c7c5; }}
.ct-time {{ display:inline-block; min-width:4.2em; text-align:right; margin-right:6px; }}
.ct-time.hot {{ color:#c5221f; font-weight:700; }} .ct-time.warm {{ color:#b06000; }}
.ct-time.mild {{ color:#188038; }} .ct-time.cold {{ color:#80868b; }}
.ct-share {{ display:inline-block; width:48px; height:7px; background:#eceff1; margin-right:8px;
  vertical-align:middle; }}
.ct-share i {{ display:block; height:7px; background:#7b4fb8; }}
.ct-fn.app {{ background:#1a4d7a; color:#fff; padding:0 4px; border-radius:3px; }}
.ct-pos {{ color:#80868b; }}
.ct-hidden {{ color:#80868b; padding-left:1.1em; font-style:italic; }}
.ct-text {{ font-size:12px; overflow-x:auto; }}
details.other-tree {{ margin-top:10px; }} details.other-tree > summary {{ cursor:pointer; font-weight:600; }}
.errors pre {{ background:#fdf3f2; border:1px solid #f5c6c2; padding:8px 10px; overflow-x:auto;
  font-size:12px; }}
.flow {{ color:var(--muted); font-size:12px; }}
footer {{ color:var(--muted); font-size:12px; margin-top:18px; text-align:center; }}
"""


def render_html(profile: Profile) -> str:
    """The whole page, as text: a pure function of the profile (no clock, no file, no network)."""
    colors = profile_colors([profile])
    body = "".join(
        [
            _header(profile),
            _bottleneck(profile),
            _flows(profile),
            _pipelines(profile),
            _stages(profile, colors),
            _offloads(profile),
            _timeline(profile),
            _call_trees(profile),
            _errors(profile),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing on this page may load from elsewhere; say so to the browser too.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
        "'unsafe-inline'; "
        'img-src data:">'
        f"<title>wiredprof: {_e(profile.flow)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}<footer>wiredprof {_e(__version__)} · "
        f"{_e(profile.schema)}</footer></main></body></html>\n"
    )
