"""Retries, local runs, timeouts and link losses of offloaded stages, in every report."""
from __future__ import annotations

import dataclasses

from tests.profiles import reference
from wiredprof.profile import OffloadEvent, Profile, TimelineSpan
from wiredprof.reports.compare import compare_profiles, render_comparison
from wiredprof.reports.html import render_html
from wiredprof.reports.text import render_text
from wiredprof.reports.timeline import render_timeline_svg


def offloaded(retries=2, fallbacks=1, timeouts=1, link_losses=3) -> Profile:
    base = reference()
    stages = [dataclasses.replace(s, host="B", retries=retries, fallbacks=fallbacks, timeouts=timeouts,
                                  link_losses=link_losses) if s.stage == "core_logic" else s
              for s in base.stages]
    timeline = [TimelineSpan("pipeline_3", "core_logic", "B", 1.0, 2.0, 1.9),
                TimelineSpan("pipeline_1", "storage", "local", 0.5, 1.0, 0.1)]
    events = [OffloadEvent(1.5, "pipeline_3", "core_logic", "B", "link_losses"),
              OffloadEvent(2.5, "pipeline_3", "core_logic", "B", "fallbacks")]
    return dataclasses.replace(base, stages=stages, timeline=timeline, offload_events=events)


def test_text_report_has_a_row_per_offloaded_stage():
    text = render_text(offloaded())
    row = next(line for line in text.splitlines() if line.startswith("pipeline_3.core_logic") and " B " in line)
    assert row.split()[1:] == ["B", "2", "0", "1", "1", "3"]
    assert "offloaded stage" in text and "link losses" in text
    assert "offloaded stage" not in render_text(reference())  # nothing offloaded, no table


def test_html_page_has_the_counts_and_timeline_marks():
    page = render_html(offloaded())
    assert "<h2>Offloaded stages</h2>" in page
    assert page.count('class="offload-event"') == 2
    assert 'data-what="link_losses"' in page and 'data-what="fallbacks"' in page
    assert "core_logic on B: link lost at 1.500 s" in page
    assert "offload: run locally" in page  # the legend names the marks in use


def test_timeline_marks_only_when_there_are_events():
    assert "offload-event" not in render_timeline_svg(dataclasses.replace(offloaded(), offload_events=[]))


def test_compare_shows_the_events_old_and_new():
    old, new = offloaded(retries=0, link_losses=0), offloaded(retries=2, link_losses=3)
    text = render_comparison(old, new, compare_profiles(old, new))
    row = next(line for line in text.splitlines() if line.startswith("pipeline_3.core_logic") and "->" in line)
    assert "0 -> 2" in row and "0 -> 3" in row


def test_events_survive_the_json_round_trip():
    p = offloaded()
    back = Profile.from_dict(p.to_dict())
    assert back.offload_events == p.offload_events
    assert back.stage("pipeline_3.core_logic").link_losses == 3
