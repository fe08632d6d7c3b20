"""`wiredprof analyze FLOW.py`: run the flow unchanged, bounded, and report where the time goes."""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import click

from wiredprof.commands.output import check_writable, emit_profile, output_options
from wiredprof.config import ProjectConfig
from wiredprof.discovery import discover_stages
from wiredprof.errors import UsageError
from wiredprof.flowstages import check_offloads_exist
from wiredprof.offload.connect import open_runtime
from wiredprof.offload.entries import read_offloads
from wiredprof.profile import Profile
from wiredprof.runner import DEFAULT_DURATION_S, Progress, RunOptions, run_flow
from wiredprof.statedir import save_last_profile

__all__ = ["command", "progress_printer", "run_with_plan", "parse_duration", "exit_for"]


def progress_printer(stream: Any = None) -> Callable[[Progress], None]:
    """A progress callback: a live line on a terminal, a line every 10 s otherwise.

    It writes to a duplicate of the current stderr, so it still reaches the terminal when
    the flow's own output goes to a file (`--flow-log`).
    """
    out = stream
    if out is None:
        try:
            out = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (OSError, ValueError, AttributeError):  # no real file behind stderr (tests, embedding)
            out = sys.stderr
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


def parse_duration(value: str | None) -> float | None:
    """--duration as seconds; a clear UsageError for anything else."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"--duration must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"--duration must be a positive number of seconds, not {value!r}")
    return seconds


@contextlib.contextmanager
def flow_output_to(path: str | None) -> Iterator[None]:
    """Send the flow's stdout and stderr (its processes' too: file descriptors 1 and 2) to a file."""
    if path is None:
        yield
        return
    try:
        log = open(path, "ab")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        log.close()


def run_with_plan(flow: str, flow_args: list[str], opts: RunOptions, apply_plan: bool = True,
                  quiet: bool = False, flow_log: str | None = None) -> Profile:
    """Run the flow with the project's offload plan applied (unless `apply_plan` is False)."""
    config = ProjectConfig.find()
    runtime = None
    if apply_plan:
        entries = read_offloads(config)
        if entries:
            check_offloads_exist(entries, discover_stages(flow, flow_args), flow)
            runtime = open_runtime(config, entries)
            if not quiet:
                where = ", ".join(f"{e.stage} -> {e.host}" for e in entries.values())
                click.echo(f"wiredprof: offloaded: {where}", err=True)
    progress = opts.progress
    console = None
    if flow_log is not None and opts.console is None:
        try:  # wiredprof's own lines still reach the terminal while the flow's go to the log
            console = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (OSError, ValueError, AttributeError):
            console = None
    try:
        with flow_output_to(flow_log):
            profile = run_flow(flow, flow_args, RunOptions(**{
                **opts.__dict__, "offloads": runtime, "console": opts.console or console}))
    finally:
        if console is not None:
            console.close()
        if progress is not None and hasattr(progress, "done"):
            progress.done()
    try:
        save_last_profile(profile, config.root)
    except OSError as exc:
        click.echo(f"wiredprof: could not keep the last profile in {config.root}: {exc.strerror}", err=True)
    return profile


def exit_for(profile: Profile) -> None:
    """Leave with the run's exit code: 130 after Ctrl-C, 143 after SIGTERM, 1 when the flow failed.

    A flow thread still inside a stage after a stop cannot be interrupted; the process
    leaves without waiting for it (the report is out already).
    """
    code = {"SIGINT": 130, "SIGTERM": 143}.get(profile.stopped_by, 1 if profile.status == "failed" else 0)
    flow_threads = [t for t in threading.enumerate()
                    if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    if flow_threads:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        sys.exit(code)


@click.command("analyze", context_settings={"ignore_unknown_options": True})
@click.argument("flow", type=click.Path(dir_okay=False))
@click.argument("flow_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--duration", "duration", metavar="SECONDS",
              help=f"Stop the flow after this many seconds (default {DEFAULT_DURATION_S:g} unless --runs is given).")
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
        runs=runs,
        call_trees=not no_call_tree,
        progress=None if quiet or as_json else progress_printer(),
        flow_stdout_to_stderr=as_json,
        handle_signals=True,
    )
    profile = run_with_plan(flow, list(flow_args), opts, apply_plan=not local_only, quiet=quiet or as_json,
                            flow_log=flow_log)
    if output:
        try:
            profile.save(output)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        click.echo(f"wiredprof: saved the profile to {output}", err=True)
    emit_profile(profile, as_json, html_path, trace_path)
    exit_for(profile)
