"""The HTML page: self-contained, escaped, with every section and a real call tree."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

from wiredprof.profile import Bottleneck, CallTree, ErrorInfo, TimelineSpan, load_profile
from wiredprof.reports.html import CallTreeHTMLRenderer, render_html

# Attributes and CSS that make a browser fetch something.
_LOADS = re.compile(
    r"""(?:\b(?:src|href|srcset|poster|data|action|xlink:href)\s*=\s*["']?(?!#)([^"'\s>]+))"""
    r"""|url\(\s*["']?(?!#)([^"')]+)|@import""",
    re.I,
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    return p


def test_page_loads_nothing_from_anywhere(profile):
    page = render_html(profile)
    assert "http://" not in page and "https://" not in page
    assert _LOADS.findall(page) == []
    tags = set(parse(page).tags)
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "default-src 'none'" in page


def test_the_loads_check_can_see_a_load():
    assert _LOADS.findall('<img src="x.png"><div style="background:url(a.png)">') != []
    assert _LOADS.findall('<rect fill="url(#wp-hatch)"/>') == []


def test_header_bottleneck_tables_timeline_and_call_tree(before_profile):
    page = render_html(before_profile)
    text = " ".join(parse(page).text)
    for heading in ("Bottleneck", "Pipelines", "Stages", "Timeline", "Call stacks", "Errors"):
        assert f"<h2>{heading}</h2>" in page
    assert "samples/reference_flow.py" in text and "threads" in text and "--duration 14" in text
    assert before_profile.bottleneck.reason in text
    assert "pipeline_3.core_logic (the bottleneck)" in text
    for s in before_profile.stages:
        assert f"{s.pipeline}.<b>{s.stage}</b>" in page
    assert before_profile.notes[0].replace("'", "&#x27;") in page


def test_timeline_is_inline_svg_with_a_bar_per_call(profile):
    page = render_html(profile)
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    root = ET.fromstring(svg)  # well-formed even without its namespace
    gs = [g for g in root.iter("g") if "bar" in g.get("class", "").split()]
    assert len(gs) == len(profile.timeline)
    assert {g.get("data-lane") for g in gs if g.get("data-host") == "B"} == {"pipeline_3 @ B"}
    assert "sit in a lane of their own" in page


def test_call_tree_comes_from_the_real_pyinstrument_session(before_profile, call_tree):
    page = render_html(before_profile)
    section = page[page.index("<h2>Call stacks</h2>") :]
    assert '<div class="calltree">' in section
    for fn in ("_core_logic_work", "_score"):
        assert f">{fn}</span>" in section
    assert "<details open>" in section  # the hot path is unfolded
    assert f"call #{call_tree.sampled_calls[0]}" in section


def test_renderer_hides_nothing_it_should_show(call_tree):
    from pyinstrument.session import Session

    html = CallTreeHTMLRenderer().render(Session.from_json(call_tree.session))
    assert html.count("ct-time") >= 3
    assert "conftest.py" in html


def test_a_call_tree_without_a_session_falls_back_to_its_text(before_profile):
    tree = CallTree("pipeline_3", "core_logic", [2], 0.1, "0.100 <my_fn>  flow.py:3", None)
    page = render_html(replace(before_profile, call_trees=[tree]))
    assert '<pre class="ct-text">0.100 &lt;my_fn&gt;  flow.py:3</pre>' in page


def test_a_broken_session_falls_back_to_its_text(before_profile):
    tree = CallTree("pipeline_3", "core_logic", [2], 0.1, "tree text", {"not": "a session"})
    assert '<pre class="ct-text">tree text</pre>' in render_html(replace(before_profile, call_trees=[tree]))


def test_without_a_call_tree_the_page_says_why(before_profile):
    page = render_html(replace(before_profile, call_trees=[]))
    assert "No call stacks for pipeline_3.core_logic: none of its calls was sampled" in page
    single = [
        replace(s, calls=1, sampled_calls=0) if s.stage == "core_logic" else s for s in before_profile.stages
    ]
    page = render_html(replace(before_profile, call_trees=[], stages=single))
    assert "it made a single call" in page


def test_other_sampled_stages_are_folded_below(profile, call_tree):
    # After the offload the bottleneck is pipeline_1.storage; core_logic's tree is still there.
    page = render_html(profile)
    assert profile.bottleneck.stage == "storage"
    assert '<details class="other-tree"><summary>pipeline_3.core_logic</summary>' in page


def test_no_bottleneck(profile):
    page = render_html(replace(profile, bottleneck=None))
    assert "None found" in page and "No bottleneck, so no call stacks" in page


def test_failed_flow_and_errors(profile):
    page = render_html(
        replace(profile, status="failed", error=ErrorInfo("RuntimeError", "boom", "Traceback: boom"))
    )
    assert '<span class="status failed">failed</span>' in page
    assert "The flow failed: RuntimeError: boom" in page
    assert "pipeline_1.storage: 1 failed call" in page
    assert "OSError: disk &lt;full&gt; &amp; &#x27;slow&#x27;" in page


def test_user_text_is_escaped_everywhere(profile):
    evil = '<img src=x onerror="alert(1)">'
    odd = replace(
        profile,
        flow=evil,
        notes=[evil],
        argv=[evil],
        timeline=[*profile.timeline, TimelineSpan(evil, evil, evil, 1.0, 1.0, 0.5, error=True)],
        stages=[replace(s, stage=evil) if s.stage == "send_2" else s for s in profile.stages],
        bottleneck=Bottleneck(evil, evil, evil, competitors=[]),
        call_trees=[CallTree(evil, evil, [2], 0.1, evil, None)],
    )
    page = render_html(odd)
    assert "<img" not in page and 'onerror="' not in page
    assert "img" not in set(parse(page).tags)
    assert page.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") >= 6


def test_page_is_a_pure_function_of_the_profile(profile):
    assert render_html(profile) == render_html(profile)


def test_a_saved_profile_renders_through_show(before_profile, tmp_path):
    """The CLI path: save, `wiredprof show --html --trace`, with the call tree surviving JSON."""
    import json

    from click.testing import CliRunner

    from wiredprof.cli import cli

    saved = tmp_path / "p.json"
    before_profile.save(saved)
    html_path, trace_path = tmp_path / "r.html", tmp_path / "t.json"
    args = ["show", str(saved), "--html", str(html_path), "--trace", str(trace_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    page = html_path.read_text(encoding="utf-8")
    assert ">_core_logic_work</span>" in page and page == render_html(load_profile(saved))
    trace = json.loads(trace_path.read_text(encoding="utf-8"))
    assert len([e for e in trace["traceEvents"] if e["ph"] == "X"]) == len(before_profile.timeline)


def test_a_profile_with_nothing_in_it_still_renders():
    from wiredprof.profile import Profile

    page = render_html(Profile(flow="f.py", wall_s=0.0, pipelines=[], stages=[]))
    assert "None found" in page and "no stage call in the timeline" in page and ">1.0 s</text>" in page
