"""`wiredprof compare OLD NEW`: per-stage change; exit 1 past --max-regression."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from wiredprof.errors import UsageError
from wiredprof.profile import load_profile
from wiredprof.reports.compare import compare_profiles, render_comparison

__all__ = ["command"]


@click.command("compare")
@click.argument("old_path", metavar="OLD", type=click.Path(dir_okay=False))
@click.argument("new_path", metavar="NEW", type=click.Path(dir_okay=False))
@click.option("--max-regression", "max_regression", type=float, metavar="PCT",
              help="Exit 1 when a pipeline cycle or stage mean grew by more than PCT percent.")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
def command(old_path: str, new_path: str, max_regression: float | None, as_json: bool) -> None:
    """Show how each pipeline and stage changed from OLD to NEW (saved profiles)."""
    if max_regression is not None and max_regression < 0:
        raise UsageError(f"--max-regression must be 0 or more percent, not {max_regression:g}")
    old, new = load_profile(old_path), load_profile(new_path)
    changes = compare_profiles(old, new)
    regressed = [
        c for c in changes
        if max_regression is not None and c.change is not None and c.change * 100 > max_regression
    ]
    if as_json:
        click.echo(json.dumps({
            "schema": "wiredprof.compare/1",
            "old": old_path,
            "new": new_path,
            "changes": [{**asdict(c), "change": c.change} for c in changes],
            "regressions": [f"{c.what} {c.name}" for c in regressed],
        }, indent=2))
    else:
        click.echo(render_comparison(old, new, changes), nl=False)
    if regressed:
        names = ", ".join(f"{c.name} ({c.change * 100:+.1f} %)" for c in regressed if c.change is not None)
        click.echo(f"wiredprof: regression past {max_regression:g} %: {names}", err=True)
        sys.exit(1)
