"""Benchmarks write a report only when asked: no tracked file changes on a plain run."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks._report import add_report_option

DEFAULT = Path(__file__).resolve().parents[2] / "benchmarks" / "reports" / "x.md"


def _parse(*argv: str) -> Path | None:
    parser = argparse.ArgumentParser()
    add_report_option(parser, DEFAULT)
    report: Path | None = parser.parse_args(list(argv)).report
    return report


def test_no_report_unless_asked():
    assert _parse() is None
    assert _parse("--report") == DEFAULT
    assert _parse("--report", "/tmp/elsewhere.md") == Path("/tmp/elsewhere.md")
