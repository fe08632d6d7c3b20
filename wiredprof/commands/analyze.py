"""`wiredprof analyze FLOW.py`: run the flow unchanged, bounded, and report where the time goes."""
from __future__ import annotations

import sys

import click

from wiredprof.commands.output import emit_profile, output_options
from wiredprof.errors import UsageError
from wiredprof.runner import DEFAULT_DURATION_S, Progress, RunOptions, run_flow

__all__ = ["command", "progress_printer"]


def progress_printer(stream=None):  # type: ignore[no-untyped-def]
    """A progress callback: a live line on a terminal, a line every 10 s otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()
    last = [-10.0]

    def show(p: Progress) -> None:
        limit = f"/{p.duration_s:g} s" if p.duration_s else " s"
        cycles = "  ".join(f"{name}: {n}" for name, n in sorted(p.cycles.items()))
        line = f"wiredprof: {p.elapsed_s:5.1f}{limit}  cycles {cycles or '-'}  stage calls {p.calls}"
        if p.stopping:
            line += "  (stopping: waiting for running stages to finish)"
        if tty:
            out.write("\r\033[K" + line)
            out.flush()
        elif p.elapsed_s - last[0] >= 10:
            last[0] = p.elapsed_s
            out.write(line + "\n")
            out.flush()

    def done() -> None:
        if tty:
            out.write("\r\033[K")
            out.flush()

    show.done = done  # type: ignore[attr-defined]
    return show


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"--duration must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"--duration must be a positive number of seconds, not {value!r}")
    return seconds


@click.command("analyze", context_settings={"ignore_unknown_options": True})
@click.argument("flow", type=click.Path(dir_okay=False))
@click.argument("flow_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--duration", "duration", metavar="SECONDS",
              help=f"Stop the flow after this many seconds (default {DEFAULT_DURATION_S:g} unless --runs is given).")
@click.option("--runs", type=int, metavar="N", help="Stop each pipeline after N cycles.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Save the profile (JSON) here.")
@click.option("--no-call-tree", is_flag=True, help="Do not sample call stacks with pyinstrument.")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
@output_options
def command(
    flow: str,
    flow_args: tuple[str, ...],
    duration: str | None,
    runs: int | None,
    output: str | None,
    no_call_tree: bool,
    quiet: bool,
    as_json: bool,
    html_path: str | None,
    trace_path: str | None,
) -> None:
    """Run FLOW.py unchanged for a bounded time and show where the time goes.

    Arguments after the flow file (after `--` if they look like options) go to the flow.
    """
    progress = None if quiet or as_json else progress_printer()
    opts = RunOptions(
        duration_s=_duration(duration),
        runs=runs,
        call_trees=not no_call_tree,
        progress=progress,
        flow_stdout_to_stderr=as_json,
    )
    try:
        profile = run_flow(flow, list(flow_args), opts)
    finally:
        if progress is not None:
            progress.done()  # type: ignore[attr-defined]
    if output:
        try:
            profile.save(output)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        click.echo(f"wiredprof: saved the profile to {output}", err=True)
    emit_profile(profile, as_json, html_path, trace_path)
    if profile.status == "failed":
        sys.exit(1)
