"""The `--report [FILE]` option every benchmark shares: a report is written only when asked.

`--report` alone writes the committed report under benchmarks/reports/; `--report FILE`
writes FILE; without the option nothing tracked changes (the figures are printed).
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_report_option"]


def add_report_option(parser: argparse.ArgumentParser, default: Path, what: str = "the Markdown report") -> None:
    """Add `--report [FILE]` to `parser` (`args.report` is a Path, or None when not asked)."""
    parser.add_argument(
        "--report", nargs="?", type=Path, const=default, default=None, metavar="FILE",
        help=f"write {what} to FILE, or to {default.relative_to(default.parents[2])} when FILE is left out "
             "(without --report nothing is written)")
