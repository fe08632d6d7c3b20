"""What `analyze` and `run` share on the command line: --duration read, the run's exit code."""
from __future__ import annotations

import os
import sys
import threading

from wiredprof.errors import UsageError
from wiredprof.profile import Profile

__all__ = ["parse_duration", "exit_for", "START_LIMIT_HELP"]


def parse_duration(value: str | None, option: str = "--duration") -> float | None:
    """--duration (or another `option` in seconds) as seconds; a clear UsageError for anything else."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"{option} must be a number of seconds, not {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


START_LIMIT_HELP = ("End the run (exit 2, nothing saved) if the flow has not started its pipelines "
                    "(launch_flow, or a first stage) within this many seconds (default {default:g}{when}).")


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
