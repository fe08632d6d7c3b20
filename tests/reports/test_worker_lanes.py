"""Timeline lanes per worker: an offloaded stage's calls on a cluster of several workers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.reports.pngread import read_png
from wiredprof.profile import Profile
from wiredprof.reports.base import profile_colors
from wiredprof.reports.timeline import render_timeline_svg, timeline_lanes
from wiredprof.testing.chromium import find_chromium, write_png

SVG = "{http://www.w3.org/2000/svg}"
W1, W2 = "tcp://10.1.0.7:40111", "tcp://10.1.0.8:40222"


@pytest.fixture
def on_two_workers(profile: Profile) -> Profile:
    """The offloaded profile, its core_logic calls alternating between two workers of host B."""
    spans, k = [], 0
    for s in profile.timeline:
        if s.host == "B":
            s = replace(s, worker=(W1, W2)[k % 2])
            k += 1
        spans.append(s)
    assert k >= 2
    return replace(profile, timeline=spans)


def test_a_lane_per_worker_under_the_pipeline(on_two_workers: Profile) -> None:
    lanes = timeline_lanes(on_two_workers)
    labels = [lane.label for lane in lanes]
    assert labels == ["pipeline_1", "pipeline_2", "pipeline_3", "pipeline_3 @ B / 10.1.0.7:40111",
                      "pipeline_3 @ B / 10.1.0.8:40222"]
    for lane, worker in zip(lanes[3:], (W1, W2)):
        assert lane.remote and lane.worker == worker and lane.bars
        assert {b.span.worker for b in lane.bars} == {worker}
    assert sum(len(lane.bars) for lane in lanes) == len(on_two_workers.timeline)


def test_no_worker_keeps_one_lane_per_host(profile: Profile) -> None:
    assert [lane.label for lane in timeline_lanes(profile)][-1] == "pipeline_3 @ B"


def test_worker_lanes_are_labelled_and_bars_say_their_worker(on_two_workers: Profile) -> None:
    svg = render_timeline_svg(on_two_workers)
    root = ET.fromstring(svg)
    workers = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "worker"]
    assert workers == ["10.1.0.7:40111", "10.1.0.8:40222"]
    remote_bars = [g for g in root.iter(f"{SVG}g") if g.get("data-host") == "B"]
    assert remote_bars and {g.get("data-worker") for g in remote_bars} == {W1, W2}
    hover = next(g.find(f"{SVG}title") for g in remote_bars if g.get("data-worker") == W2)
    assert hover is not None and f"worker {W2}" in (hover.text or "")


@pytest.mark.chromium
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_rendered_png_shows_core_logic_in_each_worker_lane(on_two_workers: Profile, tmp_path: Path) -> None:
    svg = render_timeline_svg(on_two_workers)
    png = write_png(svg, tmp_path / "lanes.png")
    width, height, bpp, rows = read_png(png)
    color = profile_colors([on_two_workers])["core_logic"]
    want = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    lanes = {m.group(1): (float(m.group(2)), float(m.group(3)))
             for m in re.finditer(r'class="lane" data-lane="([^"]+)" x="[\d.]+" y="([\d.]+)" width="\d+" '
                                  r'height="([\d.]+)"', svg)}
    assert height >= max(y + h for y, h in lanes.values())

    def core_logic_pixels(label: str) -> int:
        y, h = lanes[label]
        row = rows[int(y + h / 2)]
        return sum(1 for x in range(width) if tuple(row[x * bpp:x * bpp + 3]) == want)

    for label in ("pipeline_3 @ B / 10.1.0.7:40111", "pipeline_3 @ B / 10.1.0.8:40222"):
        assert core_logic_pixels(label) > 20, f"no core_logic bar drawn in the lane {label}"
    assert core_logic_pixels("pipeline_3") == 0  # it left its pipeline's own lane


def test_the_text_report_lists_each_workers_calls(on_two_workers: Profile) -> None:
    from wiredprof.profile import WorkerShare
    from wiredprof.reports.text import render_text

    stages = [replace(s, workers=[WorkerShare(W1, 3, 6.2, 5.9), WorkerShare(W2, 2, 4.1, 3.95)])
              if s.host == "B" else s for s in on_two_workers.stages]
    text = render_text(replace(on_two_workers, stages=stages))
    rows = [line.split() for line in text.splitlines() if line.startswith("pipeline_3.core_logic  tcp://")]
    assert rows == [["pipeline_3.core_logic", W1, "3", "6.2", "s", "5.9", "s"],
                    ["pipeline_3.core_logic", W2, "2", "4.1", "s", "3.95", "s"]]
    assert "worker" not in render_text(on_two_workers)  # no worker known: no table
