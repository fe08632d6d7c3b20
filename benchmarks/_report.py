"""The `--report [FILE]` option every benchmark shares: a report is written only when asked.

`--report` alone writes the committed report under benchmarks/reports/; `--report FILE`
writes FILE; without the option nothing tracked changes (the figures are printed).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tabulate import tabulate

__all__ = ["add_report_option", "write_report", "say_targets", "log_stderr", "markdown_table", "quick_json_main"]

Log = Callable[[str], None]


def add_report_option(parser: argparse.ArgumentParser, default: Path, what: str = "the Markdown report") -> None:
    """Add `--report [FILE]` to `parser` (`args.report` is a Path, or None when not asked)."""
    parser.add_argument(
        "--report", nargs="?", type=Path, const=default, default=None, metavar="FILE",
        help=f"write {what} to FILE, or to {default.relative_to(default.parents[2])} when FILE is left out "
             "(without --report nothing is written)")


def write_report(path: Path, markdown: str, result: dict[str, Any]) -> Path:
    """Write the Markdown report to `path` and its numbers as JSON beside it; return the JSON's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown)
    numbers = path.with_suffix(".json")
    numbers.write_text(json.dumps(result, indent=2) + "\n")
    return numbers


def say_targets(result: dict[str, Any], log: Callable[[str], None]) -> None:
    """One line per target of `result["targets"]`: measured, the target, met or MISSED."""
    for t in result["targets"]:
        log(f"target {t['name']}: {t['measured']} ({t['target']}): {'met' if t['met'] else 'MISSED'}")


def markdown_table(headers: list[str], rows: list[list[Any]], right: Iterable[int] = ()) -> str:
    """A GitHub Markdown table (tabulate's "github"), cells as given: numbers are not re-formatted.

    `right`: indexes of the columns to right-align. "github" writes no alignment marks, so such a
    table is written as tabulate's "pipe", the same table with the `:` marks (`---:` right, `:---` left).
    """
    right = set(right)
    if not right:
        return str(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    align = ["right" if i in right else "left" for i in range(len(headers))]
    return str(tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align))


def log_stderr(msg: str) -> None:
    """A benchmark's progress line, on stderr (stdout stays for --json)."""
    print(msg, file=sys.stderr, flush=True)


def quick_json_main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    quick_help: str,
    default_report: Path,
    run: Callable[[bool, Log, list[str]], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    summary: Callable[[dict[str, Any], Log], None] | None = None,
) -> int:
    """The `main` of a benchmark with `--quick`, `--json` and `--report [FILE]`.

    `run(quick, log, argv)` measures and returns the result (with its "targets"); with
    `--report` it is rendered (`render`) and written with its JSON beside it; then
    `summary(result, log)`, one line per target, and the JSON on stdout with `--json`.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_report_option(parser, default_report, "the Markdown report, and its numbers as JSON beside it,")
    args = parser.parse_args(argv)
    result = run(args.quick, log_stderr, list(sys.argv[1:] if argv is None else argv))
    if args.report is not None:
        result["report"] = str(args.report)
        numbers = write_report(args.report, render(result), result)
        log_stderr(f"report written to {args.report} (and its numbers to {numbers.name})")
    if summary is not None:
        summary(result, log_stderr)
    say_targets(result, log_stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0
