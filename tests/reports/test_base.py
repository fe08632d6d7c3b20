"""Stage kinds and their colours, shared by every picture."""

from __future__ import annotations

from wiredprof.profile import TimelineSpan
from wiredprof.reports.base import KIND_COLORS, kind_colors, kind_of, profile_colors, stage_kinds


def test_kind_comes_from_the_stage_statistics_else_from_the_name(profile):
    kinds = stage_kinds(profile)
    assert kind_of(kinds, "pipeline_3", "storage_2") == "storage"
    assert kind_of(kinds, "pipeline_9", "send_12") == "send"  # not in the statistics
    assert kind_of(kinds, "pipeline_9", "custom") == "custom"


def test_known_kinds_keep_their_colour_and_others_get_distinct_ones():
    colors = kind_colors(["storage", "zeta", "alpha", "core_logic"])
    assert colors["storage"] == KIND_COLORS["storage"] and colors["core_logic"] == KIND_COLORS["core_logic"]
    assert len(set(colors.values())) == 4
    # The same set in another order gives the same colours.
    assert kind_colors(iter(["alpha", "core_logic", "zeta", "storage"])) == colors


def test_many_custom_kinds_still_get_distinct_colours():
    colors = kind_colors([f"k{i}" for i in range(30)])
    assert len(set(colors.values())) == 30


def test_before_and_after_colour_a_stage_alike(profile, before_profile):
    both = profile_colors([before_profile, profile])
    assert both == profile_colors([profile]) == profile_colors([before_profile])
    assert list(both) == ["http_connector", "storage", "mqtt_connector", "core_logic", "send"]


def test_a_span_without_statistics_still_gets_a_colour(profile):
    from dataclasses import replace

    odd = replace(
        profile, timeline=[*profile.timeline, TimelineSpan("pipeline_4", "enrich_2", "local", 1.0, 0.5, 0.1)]
    )
    assert "enrich" in profile_colors([odd])
