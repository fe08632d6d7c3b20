"""The progress line of a running flow (`analyze`, `run`): live on a terminal, every 10 s otherwise."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from wiredprof.runner import Progress

__all__ = ["ProgressLine", "progress_text"]

_EVERY_S = 10.0  # without a terminal, a line this often


def progress_text(p: Progress) -> str:
    """One line: the start-up while the flow has not started its pipelines, then the time since it did."""
    if p.startup_s is None:
        limit = f", at most {p.start_limit_s:g} s" if p.start_limit_s else ""
        line = f"wiredprof: starting {p.elapsed_s:5.1f} s  (waiting for the flow to start its pipelines{limit})"
    else:
        limit = f"/{p.duration_s:g} s" if p.duration_s else " s"
        cycles = "  ".join(f"{name}: {n}" for name, n in sorted(p.cycles.items()))
        line = (f"wiredprof: {p.elapsed_s:5.1f}{limit}  (start-up {p.startup_s:.1f} s)  cycles {cycles or '-'}  "
                f"stage calls {p.calls}")
    if p.stopping:
        line += "  (stopping: waiting for running stages to finish)"
    return line


class ProgressLine:
    """A `RunOptions.progress` callback; `done()` clears a live line when the run ends.

    It writes to a duplicate of the current stderr, so it still reaches the terminal when
    the flow's own output goes to a file (`--flow-log`).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        if stream is None:
            try:
                stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
            except (OSError, ValueError, AttributeError):  # no real file behind stderr (tests, embedding)
                stream = sys.stderr
        self.out = stream
        self.tty = stream.isatty()
        self._last = -_EVERY_S

    def __call__(self, p: Progress) -> None:
        line = progress_text(p)
        since_run_start = p.elapsed_s + (p.startup_s or 0.0)
        if self.tty:
            self.out.write("\r\033[K" + line)
            self.out.flush()
        elif since_run_start - self._last >= _EVERY_S:
            self._last = since_run_start
            self.out.write(line + "\n")
            self.out.flush()

    def done(self) -> None:
        """Clear the live line (a terminal only)."""
        if self.tty:
            self.out.write("\r\033[K")
            self.out.flush()
