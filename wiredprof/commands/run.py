"""`wiredprof run FLOW.py`: the flow as it is, with the offloaded stages running on their hosts."""
from __future__ import annotations

import sys

import click

from wiredprof.commands.flowrun import START_LIMIT_HELP, exit_for, parse_duration
from wiredprof.commands.output import check_writable, emit_profile, save_output
from wiredprof.reports.base import offload_counts, offload_summary
from wiredprof.reports.progress import ProgressLine
from wiredprof.reports.text import fmt_s
from wiredprof.runner import DEFAULT_START_LIMIT_S, RunOptions, run_project

__all__ = ["command"]


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("flow", type=click.Path(dir_okay=False))
@click.argument("flow_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--duration", metavar="SECONDS",
              help="Stop the flow this many seconds after it started its pipelines (default: as it runs).")
@click.option("--start-limit", metavar="SECONDS",
              help=START_LIMIT_HELP.format(default=DEFAULT_START_LIMIT_S, when=" with --duration or --runs, none without"))
@click.option("--runs", type=click.IntRange(min=1), metavar="N", help="Stop each pipeline after N cycles.")
@click.option("--profile", "show_profile", is_flag=True, help="Print the full analysis at the end.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Save the profile (JSON) here.")
def command(flow: str, flow_args: tuple[str, ...], duration: str | None, start_limit: str | None, runs: int | None,
            show_profile: bool, output: str | None) -> None:
    """Run FLOW.py with the project's offload plan applied; the flow stays the single entry point.

    A failure on the host surfaces inside its stage, as a local exception would.
    """
    check_writable(output)  # before the run, not after it
    opts = RunOptions(
        duration_s=parse_duration(duration),
        start_limit_s=parse_duration(start_limit, "--start-limit"),
        runs=runs,
        unbounded=duration is None and runs is None,
        call_trees=show_profile,
        progress=ProgressLine() if sys.stderr.isatty() else None,
        handle_signals=True,
    )
    profile = run_project(flow, list(flow_args), opts, say=lambda line: click.echo(line, err=True))
    save_output(profile, output)
    if show_profile:
        emit_profile(profile, False, None, None)
    else:
        for s in profile.stages:
            if s.host != "local":
                extra = f"; offload events: {offload_summary(s)}" if any(offload_counts(s)) else ""
                click.echo(f"wiredprof: {s.name} ran on {s.host}: {s.calls} calls, mean {fmt_s(s.mean_s)}, "
                           f"{s.errors} errors{extra}", err=True)
        click.echo(f"wiredprof: the flow ended: {profile.status} after {fmt_s(profile.wall_s)}", err=True)
    exit_for(profile)
