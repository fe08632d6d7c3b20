"""The timeline: lanes per (pipeline, host), one bar per call, one time scale for before/after."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from wiredprof.profile import PipelineStats, TimelineSpan
from wiredprof.reports.base import KIND_COLORS
from wiredprof.reports.timeline import render_timeline_svg, render_timelines_svg, timeline_lanes

SVG = "{http://www.w3.org/2000/svg}"


def bars(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "bar" in g.get("class", "").split()]


def lane_labels(root: ET.Element) -> list[str]:
    return [r.get("data-lane") for r in root.iter(f"{SVG}rect") if r.get("class") == "lane"]


def test_lanes_per_pipeline_then_its_remote_host(profile):
    lanes = timeline_lanes(profile)
    assert [lane.label for lane in lanes] == ["pipeline_1", "pipeline_2", "pipeline_3", "pipeline_3 @ B"]
    remote = lanes[-1]
    assert remote.remote and {b.span.stage for b in remote.bars} == {"core_logic"}
    assert "core_logic" not in {b.span.stage for b in lanes[2].bars}
    assert sum(len(lane.bars) for lane in lanes) == len(profile.timeline)


def test_everything_local_has_no_remote_lane(before_profile):
    assert [lane.label for lane in timeline_lanes(before_profile)] == [
        "pipeline_1",
        "pipeline_2",
        "pipeline_3",
    ]


def test_a_pipeline_without_calls_keeps_an_empty_lane(profile):
    idle = replace(profile, pipelines=[*profile.pipelines, PipelineStats("pipeline_4", 0.0, 0, 0.0)])
    lanes = timeline_lanes(idle)
    assert lanes[-1].label == "pipeline_4" and lanes[-1].bars == ()


def test_overlapping_calls_take_another_row(profile):
    extra = TimelineSpan("pipeline_1", "storage", "local", 0.1, 1.0, 0.0)
    (lane,) = [
        ln
        for ln in timeline_lanes(replace(profile, timeline=[*profile.timeline, extra]))
        if ln.label == "pipeline_1"
    ]
    assert lane.rows == 2
    assert [b.row for b in lane.bars if b.span is extra] == [1]
    # Back-to-back calls (end == next start) share a row.
    assert timeline_lanes(profile)[0].rows == 1


def test_every_call_is_a_bar_in_its_lane_with_a_hover_title(profile):
    root = ET.fromstring(render_timeline_svg(profile))
    gs = bars(root)
    assert len(gs) == len(profile.timeline)
    assert lane_labels(root) == ["pipeline_1", "pipeline_2", "pipeline_3", "pipeline_3 @ B"]
    for g in gs:
        want = g.get("data-pipeline") + (" @ B" if g.get("data-host") == "B" else "")
        assert g.get("data-lane") == want
        title = g.find(f"{SVG}title").text
        assert title.startswith(f"{g.get('data-pipeline')}.{g.get('data-stage')} on ")
        assert "wall" in title and "cpu" in title
    core = [g for g in gs if g.get("data-stage") == "core_logic"]
    assert core and all(g.get("data-lane") == "pipeline_3 @ B" for g in core)
    assert "on host B" in core[0].find(f"{SVG}title").text


def test_bars_take_their_kind_colour_and_the_legend_lists_each_kind(profile):
    svg = render_timeline_svg(profile)
    root = ET.fromstring(svg)
    for g in bars(root):
        fill = g.find(f"{SVG}rect").get("fill")
        assert fill == KIND_COLORS[g.get("data-kind")]
    legend = [
        t.text for t in next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend").iter(f"{SVG}text")
    ]
    assert legend[:5] == ["http_connector", "storage", "mqtt_connector", "core_logic", "send"]
    assert any("sampled" in t for t in legend) and "raised an error" in legend
    assert any("another host" in t for t in legend)


def test_errors_and_sampled_calls_are_marked(profile):
    gs = bars(ET.fromstring(render_timeline_svg(profile)))
    errors = [g for g in gs if "error" in g.get("class").split()]
    assert [(g.get("data-pipeline"), g.get("data-stage")) for g in errors] == [("pipeline_1", "storage")]
    assert errors[0].find(f"{SVG}circle") is not None
    assert "raised an error" in errors[0].find(f"{SVG}title").text
    sampled = [g for g in gs if "sampled" in g.get("class").split()]
    assert [g.get("data-stage") for g in sampled] == ["core_logic"]
    assert any(r.get("fill", "").startswith("url(#") for r in sampled[0].iter(f"{SVG}rect"))


def test_time_axis_has_second_ticks_covering_the_run(profile):
    root = ET.fromstring(render_timeline_svg(profile))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[0] == "0 s" and ticks[-1] == "12 s" and len(ticks) == 7


def _bar_width(svg: str, stage: str, host: str) -> float:
    g = next(
        g
        for g in bars(ET.fromstring(svg))
        if g.get("data-stage") == stage and g.get("data-host") == host and "sampled" not in g.get("class")
    )
    return float(g.find(f"{SVG}rect").get("width"))


def test_before_and_after_share_one_time_scale(profile, before_profile):
    short = replace(profile, timeline=[s for s in profile.timeline if s.start_s < 7])
    svg = render_timelines_svg([("before", before_profile), ("after", short)])
    root = ET.fromstring(svg)
    panels = [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]
    assert len(panels) == 2
    # The same one-second call is equally wide in both panels, whatever each panel's length.
    w_before = [
        float(g.find(f"{SVG}rect").get("width"))
        for g in bars(panels[0])
        if g.get("data-stage") == "storage"
        and g.get("data-pipeline") == "pipeline_1"
        and "error" not in g.get("class")
    ][0]
    w_after = [
        float(g.find(f"{SVG}rect").get("width"))
        for g in bars(panels[1])
        if g.get("data-stage") == "storage"
        and g.get("data-pipeline") == "pipeline_1"
        and "error" not in g.get("class")
    ][0]
    assert w_before == w_after
    # One legend for both.
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"]) == 1
    # And it is a scale, not a stretch: core_logic on B is a quarter of core_logic on A.
    assert _bar_width(svg, "core_logic", "B") == pytest.approx(
        _bar_width(svg, "core_logic", "local") / 4, rel=0.02
    )


def test_a_window_of_recent_calls_starts_at_its_first_call(profile):
    recent = replace(profile, timeline=[s for s in profile.timeline if s.start_s >= 5.0], timeline_dropped=40)
    root = ET.fromstring(render_timeline_svg(recent))
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[0] != "0 s"
    assert any("40 earlier dropped" in (t.text or "") for t in root.iter(f"{SVG}text"))


def test_user_text_is_escaped(profile):
    evil = '<script>alert("x")</script>&'
    odd = replace(
        profile, flow=evil, timeline=[*profile.timeline, TimelineSpan(evil, evil, "B&<", 1.0, 2.0, 1.0)]
    )
    svg = render_timeline_svg(odd)
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # still well-formed
    g = next(g for g in bars(root) if g.get("data-stage") == evil)
    assert g.get("data-lane") == f"{evil} @ B&<"


def test_empty_timeline_says_so(profile):
    svg = render_timeline_svg(replace(profile, timeline=[]))
    assert "no stage call in the timeline" in svg
    assert not bars(ET.fromstring(svg))


def test_no_panels_is_an_error():
    with pytest.raises(ValueError):
        render_timelines_svg([])


def test_svg_declares_its_size_for_rasterising(profile):
    svg = render_timeline_svg(profile, width=900)
    m = re.match(r'<svg [^>]*width="(\d+)" height="(\d+)" viewBox="0 0 (\d+) (\d+)"', svg)
    assert m and m.group(1) == m.group(3) == "900" and m.group(2) == m.group(4)


def test_the_legend_explains_only_the_marks_in_use(before_profile):
    plain = replace(
        before_profile, timeline=[replace(s, error=False, sampled=False) for s in before_profile.timeline]
    )
    root = ET.fromstring(render_timeline_svg(plain))
    legend = [
        t.text for t in next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend").iter(f"{SVG}text")
    ]
    assert legend == ["http_connector", "storage", "mqtt_connector", "core_logic", "send"]


def test_long_lane_names_are_shortened_to_fit_with_the_full_name_on_hover(profile):
    long = "ingest_" + "x" * 60 + "_end"
    odd = replace(profile, timeline=[*profile.timeline, TimelineSpan(long, "s", "B", 1.0, 1.0, 0.5)])
    root = ET.fromstring(render_timeline_svg(odd))
    (label,) = [t for t in root.iter(f"{SVG}text") if t.find(f"{SVG}title") is not None
                and t.find(f"{SVG}title").text == f"{long} @ B"]
    shown = "".join(label.itertext()).replace(f"{long} @ B", "", 1)
    assert "\u2026" in shown and shown.startswith("ingest_") and shown.endswith("_end @ B")
    assert len(shown) * 7.2 <= 190 - 12  # fits left of the plot
