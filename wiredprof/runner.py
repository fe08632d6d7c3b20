"""Run a flow script unchanged, as `python FLOW.py ARGS` would, with its stages instrumented.

The script runs as `__main__` in this process (`runpy.run_path`, `sys.argv` and
`sys.path[0]` set as the interpreter sets them, both restored afterwards). The run is
bounded: wiredflow's own loops are told to stop at the deadline or after `--runs`
cycles; plain flows stop at their next `wiredprof.pipeline(...)`; a flow that ignores
both is interrupted once a grace period has passed. Whatever happens inside the flow, the
measurements taken so far become a `Profile`.
"""
from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from wiredprof.adapters import wiredflow as wiredflow_adapter
from wiredprof.analysis import analyze
from wiredprof.errors import FlowFileError, NoStagesError, UsageError
from wiredprof.profile import ErrorInfo, Profile
from wiredprof.profiling import callbacks
from wiredprof.profiling.aggregate import build_profile
from wiredprof.profiling.calltree import CallTreeSampler
from wiredprof.profiling.control import RunControl, set_current_control
from wiredprof.profiling.recorder import Recorder, error_info, set_current_recorder
from wiredprof.profiling.threads import ThreadStateSampler

__all__ = ["RunOptions", "Progress", "run_flow", "DEFAULT_DURATION_S"]

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 60.0


@dataclass(frozen=True)
class Progress:
    """A snapshot for the progress line: seconds elapsed and cycles per pipeline."""

    elapsed_s: float
    duration_s: float | None
    runs: int | None
    cycles: dict[str, int]
    calls: int
    stopping: bool = False


@dataclass(frozen=True)
class RunOptions:
    """How long to run and what to collect."""

    duration_s: float | None = None
    runs: int | None = None
    call_trees: bool = True
    grace_s: float | None = None  # after the deadline, before interrupting; default scales with duration
    progress: Callable[[Progress], None] | None = None
    progress_every_s: float = 0.5
    timeline_size: int = 5000
    flow_stdout_to_stderr: bool = False  # keep stdout clean for --json
    offloads: Any = None  # an OffloadRuntime: stages that run on other hosts
    unbounded: bool = False  # run as long as the flow does (`wiredprof run` with no limit)
    notes: list[str] = field(default_factory=list)

    def validated(self) -> RunOptions:
        if self.duration_s is not None and not (self.duration_s > 0):
            raise UsageError(f"--duration must be a positive number of seconds, not {self.duration_s!r}")
        if self.runs is not None and self.runs < 1:
            raise UsageError(f"--runs must be 1 or more, not {self.runs!r}")
        if self.duration_s is None and self.runs is None and not self.unbounded:
            return RunOptions(**{**self.__dict__, "duration_s": DEFAULT_DURATION_S})
        return self


class _Watchdog:
    """Reports progress and, past the deadline plus grace, interrupts a flow that will not stop."""

    def __init__(self, rec: Recorder, control: RunControl, opts: RunOptions) -> None:
        self.rec = rec
        self.control = control
        self.opts = opts
        self.interrupted = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wiredprof-watchdog", daemon=True)
        grace = opts.grace_s
        if grace is None:
            grace = max(30.0, 0.5 * (opts.duration_s or 0.0))
        self.hard_deadline = control.deadline + grace if control.deadline is not None else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2.0)

    def snapshot(self) -> Progress:
        return Progress(
            elapsed_s=self.control.clock() - self.control.started,
            duration_s=self.opts.duration_s,
            runs=self.opts.runs,
            cycles={name: c.runs for name, c in self.rec.cycles.items()},
            calls=sum(a.calls + a.sampled for a in self.rec.stages.values()),
            stopping=self.control.stop_requested,
        )

    def _run(self) -> None:
        while not self._done.wait(self.opts.progress_every_s):
            if self.opts.progress is not None:
                try:
                    self.opts.progress(self.snapshot())
                except Exception:
                    log.debug("progress callback failed", exc_info=True)
            if self.hard_deadline is not None and self.control.clock() >= self.hard_deadline and not self.interrupted:
                self.interrupted = True
                self.control.request_stop()
                os.kill(os.getpid(), signal.SIGINT)


def _user_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t for t in threading.enumerate()
        if t not in before and not t.daemon and t is not threading.current_thread() and t.is_alive()
    ]


def _is_wiredflow_process_mode_bug(exc: BaseException) -> bool:
    # wiredflow 0.1.0 ends every successful process-mode run with this (flow.py:104).
    return isinstance(exc, AttributeError) and "AutoProxy[ExecutionStatusChecker]" in str(exc)


def _is_wiredflow_service_failure(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and str(exc).startswith("Service was failed")


def _where(exc: BaseException, path: Path) -> str:
    """`file:line` of the innermost frame of the flow file in a traceback."""
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            found = f"{path.name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def run_flow(flow: str | os.PathLike[str], args: list[str] | None = None, options: RunOptions | None = None) -> Profile:
    """Run the flow file bounded by `options` and return its analysed profile."""
    opts = (options or RunOptions()).validated()
    path = Path(flow)
    if not path.exists():
        raise FlowFileError(f"{flow}: no such flow file")
    if not path.is_file():
        raise FlowFileError(f"{flow}: not a file (give the flow's .py script)")
    path = path.resolve()
    argv = [str(flow), *(args or [])]

    rec = Recorder(timeline_size=opts.timeline_size)
    if opts.call_trees:
        rec.call_trees = CallTreeSampler()
    control = RunControl(opts.duration_s, opts.runs, cycles_done=rec.cycles_done)
    threads = ThreadStateSampler(rec)
    watchdog = _Watchdog(rec, control, opts)
    notes = list(opts.notes)
    status, error = "ok", None
    before = set(threading.enumerate())

    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    saved_main = sys.modules.get("__main__")
    started_at = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    set_current_recorder(rec)
    set_current_control(control)
    if opts.offloads is not None:
        opts.offloads.install(rec)
    callbacks.install(rec)  # before the import hook: it patches once wiredflow is in
    wiredflow_adapter.install_import_hook()
    threads.start()
    rec.register_thread("", "main")  # after the sampler: it learns this process's memory baseline
    watchdog.start()
    sys.argv = argv
    saved_stdout = sys.stdout
    if opts.flow_stdout_to_stderr:
        sys.stdout = sys.stderr
    if sys.path:
        sys.path[0] = str(path.parent)
    else:
        sys.path.insert(0, str(path.parent))
    try:
        try:
            runpy.run_path(str(path), run_name="__main__")
            _wait_for_threads(before, watchdog)
        except SystemExit as exc:
            _wait_for_threads(before, watchdog)
            code = exc.code
            if code not in (None, 0) and not control.stop_requested:
                status = "failed"
                notes.append(f"the flow exited with status {code}")
        except KeyboardInterrupt:
            status = "stopped"
            notes.append(
                "the flow did not stop at the deadline and was interrupted"
                if watchdog.interrupted
                else "interrupted (Ctrl-C): the report covers what ran until then"
            )
        except BaseException as exc:  # the flow's own failure: report it, never lose the profile
            if not any(a.calls or a.sampled or a.errors for a in rec.stages.values()) and not rec.cycles:
                where = _where(exc, path)
                at = f" at {where}" if where else ""
                raise FlowFileError(
                    f"{flow} raised {type(exc).__name__}{at}: {exc} (fix the flow, or check it with `python {flow}`)"
                ) from None
            if _is_wiredflow_process_mode_bug(exc):
                notes.append(
                    "wiredflow 0.1.0 raised AttributeError after a successful process-mode run "
                    "(a known wiredflow bug, flow.py:104); counted as the success it was"
                )
            elif _is_wiredflow_service_failure(exc):
                status = "failed"
                error = _first_stage_error(rec) or error_info(exc)
                notes.append(f"wiredflow stopped the service: {exc}")
            else:
                status = "failed"
                error = error_info(exc)
    finally:
        wall = time.perf_counter() - t0
        sys.argv = saved_argv
        sys.stdout = saved_stdout
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        watchdog.stop()
        threads.stop()
        rec.drain()
        rec.close()
        set_current_recorder(None)
        set_current_control(None)
        callbacks.uninstall()  # first: its wrappers sit over the adapter's
        wiredflow_adapter.uninstall()
        if opts.offloads is not None:
            opts.offloads.uninstall()
            opts.offloads.close()

    if rec.killed:
        status = "failed"
        error = error or rec.killed[0]
        notes.extend(k.message for k in rec.killed)
    left = _user_threads(before)
    if left:
        notes.append(f"{len(left)} thread(s) of the flow were still running when the report was made")
    if not any(a.calls or a.sampled or a.errors for a in rec.stages.values()):
        raise NoStagesError(
            f"{flow} ran for {wall:.1f} s but no pipeline stage was seen: build it with wiredflow, "
            "or mark stages with wiredprof.stage(...) (see README)"
        )
    limits = {"duration_s": opts.duration_s, "runs": opts.runs, "call_trees": opts.call_trees}
    profile = build_profile(
        rec,
        str(flow),
        wall,
        argv=argv,
        status=status,
        error=error,
        notes=notes,
        limits=limits,
        call_trees=rec.call_trees.trees() if rec.call_trees is not None else None,
        started_at=started_at,
    )
    return analyze(profile)


def _first_stage_error(rec: Recorder) -> ErrorInfo | None:
    for acc in rec.stages.values():
        if acc.last_error is not None:
            return acc.last_error
    return None


def _wait_for_threads(before: set[threading.Thread], watchdog: _Watchdog) -> None:
    """`python flow.py` waits for the flow's non-daemon threads; so do we, up to the hard deadline."""
    for t in _user_threads(before):
        while t.is_alive():
            if watchdog.hard_deadline is not None and watchdog.control.clock() >= watchdog.hard_deadline:
                return
            t.join(timeout=0.2)
