"""Ending a server the tooling started, by its process group: SIGTERM, then SIGKILL, each wait bounded."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess

__all__ = ["stop_group"]

log = logging.getLogger(__name__)


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    """End `proc` and every process of its group (it leads one: `start_new_session=True`)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            log.warning("%s pid %d ignored %s", what, proc.pid, sig.name)
