"""`wiredprof analyze FLOW.py`: run the flow unchanged, bounded, and report where the time goes."""
from __future__ import annotations

import click

from wiredprof.commands.flowrun import START_LIMIT_HELP, exit_for, parse_duration
from wiredprof.commands.output import check_writable, emit_profile, output_options, save_output
from wiredprof.reports.progress import ProgressLine
from wiredprof.runner import DEFAULT_DURATION_S, DEFAULT_START_LIMIT_S, RunOptions, run_project

__all__ = ["command"]


@click.command("analyze", context_settings={"ignore_unknown_options": True})
@click.argument("flow", type=click.Path(dir_okay=False))
@click.argument("flow_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--duration", "duration", metavar="SECONDS",
              help=f"Stop the flow this many seconds after it started its pipelines (its first launch_flow, in any "
                   f"process; default {DEFAULT_DURATION_S:g} unless --runs is given). Start-up is timed apart.")
@click.option("--start-limit", metavar="SECONDS", help=START_LIMIT_HELP.format(default=DEFAULT_START_LIMIT_S, when=""))
@click.option("--runs", type=click.IntRange(min=1), metavar="N", help="Stop each pipeline after N cycles.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Save the profile (JSON) here.")
@click.option("--no-call-tree", is_flag=True, help="Do not sample call stacks with pyinstrument.")
@click.option("--local", "local_only", is_flag=True, help="Ignore the offload plan: run every stage here.")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
@click.option("--flow-log", metavar="FILE", help="Send the flow's own output (stdout, stderr, logs) to FILE.")
@output_options
def command(
    flow: str,
    flow_args: tuple[str, ...],
    duration: str | None,
    start_limit: str | None,
    runs: int | None,
    output: str | None,
    no_call_tree: bool,
    local_only: bool,
    quiet: bool,
    flow_log: str | None,
    as_json: bool,
    html_path: str | None,
    trace_path: str | None,
) -> None:
    """Run FLOW.py unchanged for a bounded time and show where the time goes.

    Arguments after the flow file (after `--` if they look like options) go to the flow.
    Stages offloaded with `wiredprof offload` run on their host, as `wiredprof run` does.
    """
    check_writable(output, html_path, trace_path)  # before the run, not after it
    opts = RunOptions(
        duration_s=parse_duration(duration),
        start_limit_s=parse_duration(start_limit, "--start-limit"),
        runs=runs,
        call_trees=not no_call_tree,
        progress=None if quiet or as_json else ProgressLine(),
        flow_stdout_to_stderr=as_json,
        handle_signals=True,
    )
    profile = run_project(flow, list(flow_args), opts, apply_plan=not local_only, flow_log=flow_log,
                          say=None if quiet or as_json else _say)
    if save_output(profile, output):
        click.echo(f"wiredprof: saved the profile to {output}", err=True)
    emit_profile(profile, as_json, html_path, trace_path)
    exit_for(profile)


def _say(line: str) -> None:
    click.echo(line, err=True)
