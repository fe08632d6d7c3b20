"""Several flows of one script, a stopped run and missing figures, as the text and HTML reports show them."""
from __future__ import annotations

from dataclasses import replace

from tests.profiles import st
from wiredprof.profile import FlowInfo, PipelineStats, Profile, load_profile
from wiredprof.reports.html import render_html
from wiredprof.reports.text import render_text


def _two_flows() -> Profile:
    stages = [replace(st("http_integers", "storage", 0.01, 0.5), flow=1),
              replace(st("http_integers#2", "storage", 0.02, 0.5), flow=2)]
    pipes = [PipelineStats("http_integers", 0.01, 4, 0.3, flow=1), PipelineStats("http_integers#2", 0.02, 4, 0.7, flow=2)]
    flows = [FlowInfo(1, ["http_integers"], "threads", 0.5, 3.0), FlowInfo(2, ["http_integers#2"], "threads", 4.0, 3.0)]
    return Profile(flow="f.py", wall_s=8, pipelines=pipes, stages=stages, flows=flows, status="stopped",
                   stopped_by="SIGINT", missing={"gil wait, core wait": "the sampler process was killed by SIGKILL"})


def test_text_shows_each_flow_and_which_flow_a_row_belongs_to():
    text = render_text(_two_flows())
    assert "2 flows (launch_flow calls) in this script, kept apart:" in text
    rows = [ln for ln in text.splitlines() if "http_integers#2.storage" in ln]
    assert rows and rows[0].startswith("#2 ")
    assert "status stopped" in text
    assert "Missing figures:" in text and "killed by SIGKILL" in text


def test_a_single_flow_has_no_flow_column():
    one = replace(_two_flows(), flows=_two_flows().flows[:1], missing={})
    text = render_text(one)
    assert "kept apart" not in text and "flow    pipeline" not in text


def test_html_names_the_flows():
    html = render_html(_two_flows())
    assert "<h2>Flows</h2>" in html and "flow #2" in html
    assert "missing: gil wait, core wait" in html


def test_the_new_fields_survive_a_save_and_load(tmp_path):
    p = _two_flows()
    p.save(tmp_path / "p.json")
    back = load_profile(tmp_path / "p.json")
    assert back.flows == p.flows and back.stopped_by == "SIGINT" and back.missing == p.missing
    assert [s.flow for s in back.stages] == [1, 2]
