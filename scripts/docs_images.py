"""Regenerate the pictures in docs/images/ from the report tests' reference profiles.

    PYTHONPATH=. python scripts/docs_images.py      # needs Chromium (apt-get install chromium)

The profiles are the hand-made reference service of tests/reports/conftest.py (DESIGN.md's
durations x 0.1; core_logic 4x faster on host B) with a call tree from a real pyinstrument
session, so the pictures show every mark the reports draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reports.conftest import real_call_tree, reference_profile  # noqa: E402
from wiredprof.reports.html import render_html  # noqa: E402
from wiredprof.reports.timeline import render_timeline_svg, render_timelines_svg  # noqa: E402
from wiredprof.testing.chromium import screenshot_html, write_png  # noqa: E402

OUT = ROOT / "docs" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tree = real_call_tree()
    before = reference_profile(offloaded=False, call_tree=tree)
    after = reference_profile(offloaded=True, call_tree=tree)
    written = [
        write_png(
            render_timeline_svg(after, title="reference flow: core_logic offloaded to host B"),
            OUT / "timeline.png",
            scale=2,
        ),
        write_png(
            render_timelines_svg(
                [("before: every stage on host A", before), ("after: pipeline_3.core_logic on host B", after)]
            ),
            OUT / "timeline_before_after.png",
            scale=2,
        ),
        screenshot_html(render_html(before), OUT / "report_html.png", 1280, 1640),
    ]
    for path in written:
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
