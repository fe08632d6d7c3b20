"""The page and the timeline as a person sees them: rendered by headless Chromium."""

from __future__ import annotations


import pytest

from tests.reports.pngread import distinct_colors, read_png
from wiredprof.reports.base import KIND_COLORS
from wiredprof.reports.html import render_html
from wiredprof.reports.timeline import render_timeline_svg, render_timelines_svg
from wiredprof.testing.chromium import ChromiumError, find_chromium, screenshot, write_png

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)"
)


def chromium_test(fn):  # type: ignore[no-untyped-def]
    return pytest.mark.chromium(needs_chromium(fn))


def rgb(hex_color: str) -> bytes:
    return bytes.fromhex(hex_color.lstrip("#"))


@chromium_test
def test_timeline_png_has_the_svg_size_and_its_colours(profile, tmp_path):
    svg = render_timeline_svg(profile)
    png = write_png(svg, tmp_path / "timeline.png")
    width, height, bpp, rows = read_png(png)
    assert (width, height) == (1100, int(svg.split('height="', 1)[1].split('"', 1)[0]))
    colors = distinct_colors(rows, bpp)
    assert len(colors) > 50  # text anti-aliasing, bars, lanes: not a blank page
    for kind in ("http_connector", "storage", "mqtt_connector", "core_logic", "send"):
        assert colors.get(rgb(KIND_COLORS[kind]), 0) > 100, f"no {kind} bar drawn"
    assert colors.get(rgb("#fdf1dc"), 0) > 1000, "host B's lane is not drawn"


@chromium_test
def test_before_after_png_scales(profile, before_profile, tmp_path):
    svg = render_timelines_svg([("before", before_profile), ("after", profile)])
    png = write_png(svg, tmp_path / "both.png", scale=2)
    width, height, _, _ = read_png(png)
    assert width == 2200 and height > 700


@chromium_test
def test_page_renders_with_the_timeline_and_call_tree(before_profile, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(before_profile), encoding="utf-8")
    png = screenshot(page, tmp_path / "report.png", 1400, 2000)
    width, height, bpp, rows = read_png(png)
    assert (width, height) == (1400, 2000)
    colors = distinct_colors(rows, bpp)
    assert len(colors) > 200
    assert colors.get(rgb(KIND_COLORS["core_logic"]), 0) > 500  # the 6 s core_logic bar
    # The page is not one flat background: the body colour covers well under all of it.
    assert max(colors.values()) < 0.8 * width * height


def test_a_missing_chromium_is_a_clear_error(profile, tmp_path, monkeypatch):
    monkeypatch.setenv("WIREDPROF_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert find_chromium() is None
    with pytest.raises(ChromiumError, match="no Chromium found"):
        write_png(render_timeline_svg(profile), tmp_path / "x.png")
    with pytest.raises(ChromiumError, match="cannot run"):
        write_png(
            render_timeline_svg(profile), tmp_path / "x.png", chromium=str(tmp_path / "no-such-chromium")
        )
