"""samples/callback_flow.py: a core logic that loads two storages through db_connectors each call."""
from __future__ import annotations

import json

import pytest

from samples.callback_flow import SUMMARY_PREFIX, report
from tests.samples._run import run_sample, summary_of

pytest.importorskip("wiredflow")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_runs_and_reports(mode: str, tmp_path) -> None:
    args = ["--records", "300", "--seconds", "4", "--workdir", str(tmp_path)]
    if mode == "processes":
        args.append("--processes")
    proc = run_sample("callback_flow.py", *args, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(proc.stdout, SUMMARY_PREFIX)
    assert summary["mode"] == mode and summary["reports"] >= 1
    lines = (tmp_path / "report.send.jsonl").read_text().splitlines()
    reports = [json.loads(x) for x in lines]
    assert reports and all(r["stations"] == r["priced"] == 300 and r["cooling_cost"] > 0 for r in reports)


class Store:
    def __init__(self, data):
        self.data, self.loads = data, 0

    def load(self, **kwargs):
        self.loads += 1
        return self.data


def test_report_joins_what_it_loads() -> None:
    weather = Store([{"station": "a", "temp_c": 25.0}, {"station": "b", "temp_c": 20.0}])
    prices = Store([{"station": "a", "price": 0.5}])
    out = report(db_connectors={"weather": weather, "prices": prices}, pipeline_name="report")
    assert out["hot"] == 1 and out["cooling_cost"] == 1.5 and out["stations"] == 2 and out["priced"] == 1
    assert weather.loads == prices.loads == 1


def test_bad_arguments_exit_2() -> None:
    proc = run_sample("callback_flow.py", "--records", "0", timeout=30)
    assert proc.returncode == 2 and "must be > 0" in proc.stderr
