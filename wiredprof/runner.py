"""Run a flow script unchanged, as `python FLOW.py ARGS` would, with its stages instrumented.

The script runs as `__main__` in this process (`runpy.run_path`, `sys.argv` and
`sys.path[0]` set as the interpreter sets them, both restored afterwards). The run is
bounded: wiredflow's own loops are told to stop at the deadline (`--duration` after the flow
started its pipelines: start-up is timed apart, and bounded by `start_limit_s`) or after `--runs`
cycles; plain flows stop at their next `wiredprof.pipeline(...)`; a flow that ignores
both is interrupted once a grace period has passed. Whatever happens inside the flow, the
measurements taken so far become a `Profile`.

The flow may run in processes it starts itself, however it starts them (a
`multiprocessing.Pool` worker that calls `launch_flow`, spawn or forkserver children):
forked ones inherit the instrumentation, spawned ones join through `profiling/child.py`,
and all send their records to this process. The stop conditions are shared with all of
them. Once every flow has stopped, a script still waiting on something else (a demo
server in a pool's other worker) is ended; at the end no process the run started is left
(`proctree.py`). With `handle_signals`, Ctrl-C or SIGTERM stops the flow within
`STOP_GRACE_S` and the profile says "stopped"; a second one exits at once.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import runpy
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable, TextIO

from wiredprof.adapters import wiredflow as wiredflow_adapter
from wiredprof.analysis import analyze
from wiredprof.config import ProjectConfig
from wiredprof.discovery import discover_stages
from wiredprof.errors import FlowFileError, FlowNeverStartedError, NoStagesError, UsageError
from wiredprof.flowstages import check_offloads_exist
from wiredprof.offload.connect import open_runtime
from wiredprof.offload.entries import read_offloads
from wiredprof.offload.runtime import OffloadRuntime
from wiredprof.profile import ErrorInfo, FlowInfo, Profile
from wiredprof.proctree import ProcessTree
from wiredprof.profiling import callbacks
from wiredprof.profiling import child as child_join
from wiredprof.profiling.aggregate import build_profile
from wiredprof.profiling.calltree import CallTreeSampler
from wiredprof.profiling.control import RunControl, set_current_control
from wiredprof.profiling.recorder import Recorder, error_info, set_current_recorder
from wiredprof.profiling.threads import ThreadStateSampler
from wiredprof.profiling.threadstate import stages_in_progress
from wiredprof.profiling.wakeprobe import WakeProbe
from wiredprof.statedir import save_last_profile

__all__ = ["RunOptions", "Progress", "run_flow", "run_project", "flow_output_to", "DEFAULT_DURATION_S",
           "DEFAULT_START_LIMIT_S"]

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 60.0
DEFAULT_START_LIMIT_S = 60.0  # a bounded run whose flow has not started its pipelines by then ends
STOP_GRACE_S = 2.0  # after Ctrl-C or SIGTERM, the flow's loops have this long to end
LINGER_S = 1.0  # once every flow stopped, the script may go on this long before it is ended
TREE_GRACE_S = 2.0  # SIGTERM, then SIGKILL after this, for processes the flow left running
_TICK_S = 0.1
_UNBLOCK_S = 3.0  # a script still running this long after it was ended gets its processes ended
_REMOTE_MARGIN_S = 2.0  # the script is ended this long after in-flight remote calls time out


@dataclass(frozen=True)
class Progress:
    """A snapshot for the progress line: seconds elapsed (since the flow started) and cycles per pipeline.

    Before the flow starts its pipelines, `startup_s` is None and `elapsed_s` counts the start-up.
    """

    elapsed_s: float
    duration_s: float | None
    runs: int | None
    cycles: dict[str, int]
    calls: int
    stopping: bool = False
    startup_s: float | None = None
    start_limit_s: float | None = None


@dataclass(frozen=True)
class RunOptions:
    """How long to run and what to collect."""

    duration_s: float | None = None
    runs: int | None = None
    call_trees: bool = True
    grace_s: float | None = None  # after the deadline, before interrupting; default scales with duration
    # A bounded run ends (FlowNeverStartedError) when the flow has not started its pipelines by
    # then; None: DEFAULT_START_LIMIT_S, unless the run is unbounded.
    start_limit_s: float | None = None
    progress: Callable[[Progress], None] | None = None
    progress_every_s: float = 0.5
    timeline_size: int = 5000
    flow_stdout_to_stderr: bool = False  # keep stdout clean for --json
    offloads: OffloadRuntime | None = None  # stages that run on other hosts
    unbounded: bool = False  # run as long as the flow does (`wiredprof run` with no limit)
    notes: list[str] = field(default_factory=list)
    # Ctrl-C / SIGTERM stop the flow and the profile is kept; a second one exits the process
    # at once (os._exit): for the command line, not for a library caller.
    handle_signals: bool = False
    console: TextIO | None = None  # where wiredprof's own lines go while the flow's output may be redirected (stderr)

    def validated(self) -> RunOptions:
        if self.duration_s is not None and not (self.duration_s > 0):
            raise UsageError(f"--duration must be a positive number of seconds, not {self.duration_s!r}")
        if self.runs is not None and self.runs < 1:
            raise UsageError(f"--runs must be 1 or more, not {self.runs!r}")
        if self.start_limit_s is not None and not (0 < self.start_limit_s < float("inf")):
            raise UsageError(f"--start-limit must be a positive number of seconds, not {self.start_limit_s!r}")
        opts = self
        if opts.duration_s is None and opts.runs is None and not opts.unbounded:
            opts = replace(opts, duration_s=DEFAULT_DURATION_S)
        if opts.start_limit_s is None and not (opts.unbounded and opts.duration_s is None and opts.runs is None):
            opts = replace(opts, start_limit_s=DEFAULT_START_LIMIT_S)
        return opts


class _RunOver(KeyboardInterrupt):
    """Raised in the main thread to end a flow script that outlives its run."""


class _Signals:
    """Ctrl-C and SIGTERM during a run: the first asks every process to stop, a second exits at once."""

    def __init__(self, control: RunControl, hard_exit: Callable[[int], None]) -> None:
        self.control = control
        self.hard_exit = hard_exit
        self.signum: int | None = None
        self.at = 0.0
        self.installed = False
        self._ending = False
        self._saved: dict[int, Any] = {}

    def install(self, handle: bool) -> None:
        if handle and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
            self.installed = True

    def uninstall(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()
        self.installed = False

    def end_script(self) -> None:
        """Make the flow script's main thread leave (a KeyboardInterrupt), wherever it waits."""
        self._ending = True
        main = threading.main_thread()
        if self.installed and main.ident is not None:
            signal.pthread_kill(main.ident, signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGINT)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._ending and signum == signal.SIGINT and self.signum is None:
            self._ending = False
            raise _RunOver()
        if self.signum is None:
            self.signum = signum
            self.at = self.control.clock()
            self.control.request_stop()
            if self._ending:  # the run was ending anyway: leave now
                self._ending = False
                raise _RunOver()
            return
        if self._ending and signum == signal.SIGINT:
            self._ending = False
            raise _RunOver()
        self.hard_exit(self.signum)


class _Watchdog:
    """Reports progress and ends a flow script that will not stop by itself.

    It ends the script: past the deadline plus grace (a stage that never returns); when the
    flow has not started its pipelines within the start limit ("never started");
    `STOP_GRACE_S` after Ctrl-C or SIGTERM; and `LINGER_S` after every flow of the run
    stopped while the script still waits for something else (a pool's demo server).
    """

    def __init__(self, rec: Recorder, control: RunControl, opts: RunOptions, signals: _Signals,
                 tree: ProcessTree) -> None:
        self.rec = rec
        self.tree = tree
        self._ended_at = 0.0
        self._tree_stopped = False
        self.control = control
        self.opts = opts
        self.signals = signals
        self.interrupted = False
        self.ended_by = ""  # "deadline" | "signal" | "flows stopped" | "never started"
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wiredprof-watchdog", daemon=True)
        grace = opts.grace_s
        if grace is None:
            grace = max(5.0, 0.5 * (opts.duration_s or 0.0))
            if opts.offloads is not None:
                # A remote call in flight at the deadline ends first, as a counted timeout
                # (offload.py), and only then is the script ended.
                from wiredprof.offload.runtime import remote_grace_s

                grace = max(grace, remote_grace_s(opts.duration_s) + _REMOTE_MARGIN_S)
        self.grace_s = grace
        self._flows_idle_since: float | None = None

    @property
    def hard_deadline(self) -> float | None:
        """When the script is ended: the deadline (known once the flow started) plus grace."""
        deadline = self.control.deadline
        return deadline + self.grace_s if deadline is not None else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2.0)

    def snapshot(self) -> Progress:
        control = self.control
        flow_started = control.flow_started
        return Progress(
            elapsed_s=control.clock() - (flow_started if flow_started is not None else control.started),
            duration_s=self.opts.duration_s,
            runs=self.opts.runs,
            cycles={name: c.runs for name, c in self.rec.cycles.items()},
            calls=sum(a.calls + a.sampled for a in self.rec.stages.values()),
            stopping=control.stop_requested,
            startup_s=control.startup_s,
            start_limit_s=control.start_limit_s,
        )

    def must_stop_waiting(self) -> bool:
        """True once waiting for the flow's threads should end (see `_wait_for_threads`)."""
        now = self.control.clock()
        if self.signals.signum is not None and now >= self.signals.at + STOP_GRACE_S:
            return True
        hard_deadline = self.hard_deadline
        return self.interrupted or (hard_deadline is not None and now >= hard_deadline)

    def _run(self) -> None:
        next_progress = self.control.clock() + self.opts.progress_every_s
        while not self._done.wait(_TICK_S):
            now = self.control.clock()
            if self.opts.progress is not None and now >= next_progress:
                next_progress = now + self.opts.progress_every_s
                try:
                    self.opts.progress(self.snapshot())
                except Exception:
                    log.debug("progress callback failed", exc_info=True)
            if self.interrupted:
                if not self._tree_stopped and now >= self._ended_at + _UNBLOCK_S:
                    # The script is still stuck (a pool joining a worker that will not die):
                    # end the run's processes, which releases it.
                    self._tree_stopped = True
                    self.tree.keep.update(_end_multiprocessing_helpers(self.tree))
                    self.tree.stop(TREE_GRACE_S)
                continue
            try:
                reason = self._why_end(now)
            except Exception:  # the run's files are going away: the run is ending
                log.debug("watchdog check failed", exc_info=True)
                continue
            if reason:
                self.interrupted = True
                self._ended_at = now
                self.ended_by = reason
                self.control.request_stop()
                self.signals.end_script()

    def _why_end(self, now: float) -> str:
        control = self.control
        if self.signals.signum is not None:
            if now >= self.signals.at + STOP_GRACE_S:
                return "signal"
            flows = control.flows()  # every flow stopped already: no need to wait longer
            return "signal" if flows and control.flows_running() == 0 else ""
        hard_deadline = self.hard_deadline
        if hard_deadline is not None and now >= hard_deadline:
            return "deadline"
        if control.never_started:
            return "never started"
        if not (control.stop_requested or control.runs is not None):
            return ""
        flows = control.flows()
        if flows and control.flows_running() == 0:
            if self._flows_idle_since is None:
                self._flows_idle_since = now
            if now - self._flows_idle_since >= LINGER_S:
                return "flows stopped"
        else:
            self._flows_idle_since = None
        return ""


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
    control = RunControl(opts.duration_s, opts.runs, cycles_done=rec.cycles_done, start_limit_s=opts.start_limit_s)
    threads = ThreadStateSampler(rec)
    tree = ProcessTree()
    signals = _Signals(control, lambda signum: _hard_exit(signum, tree, threads, control, opts.console))
    watchdog = _Watchdog(rec, control, opts, signals, tree)
    notes = list(opts.notes)
    status, error = "ok", None
    before = set(threading.enumerate())

    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    saved_main = sys.modules.get("__main__")
    started_at = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    threads.start()  # before the flow's environment is set: the sampler is not part of the flow
    wake = WakeProbe(active=stages_in_progress).start()  # how long this process's threads wait for the GIL and a core
    if threads.pid is not None:
        tree.keep.add(threads.pid)
    run_dir = control.share()
    saved_env = _set_environment(child_join.child_environment(
        rec.open_inbox(), control.child_config(), opts.call_trees, threads.table_path,
        _offloads_file(opts.offloads, run_dir)))
    set_current_recorder(rec)
    set_current_control(control)
    if opts.offloads is not None:
        opts.offloads.install(rec)
    # call-backs counted: the adapter patches wiredflow's classes for them once the flow imports it
    wiredflow_adapter.install_import_hook(after_import=[callbacks.install(rec)])
    rec.register_thread("", "main")  # after the sampler: it learns this process's memory baseline
    tree.start()
    signals.install(opts.handle_signals)
    watchdog.start()
    rec.note_thread_names()  # wiredprof's among them: the sampler folds after they end, and must know them
    sys.argv = argv
    saved_stdout = sys.stdout
    saved_fd1 = _stdout_fd_to_stderr() if opts.flow_stdout_to_stderr else None
    if opts.flow_stdout_to_stderr:
        sys.stdout = sys.stderr
    if sys.path:
        sys.path[0] = str(path.parent)
    else:
        sys.path.insert(0, str(path.parent))
    left_running: list[int] = []
    try:
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
            control.request_stop()  # the flow's other threads and processes too
            if watchdog.ended_by == "flows stopped" and signals.signum is None:
                notes.append("every flow had stopped but the script went on (waiting for another process); "
                             "wiredprof ended it")
            elif signals.signum is None:
                status = "stopped"
                notes.append(
                    "the flow did not stop at the deadline and was interrupted"
                    if watchdog.interrupted
                    else "interrupted (Ctrl-C): the report covers what ran until then"
                )
            _wait_for_threads(before, watchdog, STOP_GRACE_S)
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
        control.request_stop()
        sys.argv = saved_argv
        sys.stdout = saved_stdout
        _restore_stdout_fd(saved_fd1)
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        watchdog.stop()
        tree.keep.update(_end_multiprocessing_helpers(tree))
        left_running = tree.stop(TREE_GRACE_S)
        tree.close()
        flows = _flow_infos(control)
        startup_s = control.startup_s
        signals.uninstall()
        _restore_environment(saved_env)
        # Children's records first: the sampler's fold then knows every stage they created (their
        # numbers, and that the run delays were read for them: core wait measured or "n/m", never 0).
        rec.drain()
        threads.stop()
        rec.wake_by_pid[os.getpid()] = wake.stop()
        rec.close()
        set_current_recorder(None)
        set_current_control(None)
        control.unshare()
        callbacks.uninstall()  # before the adapter's: its wrappers sit over them
        wiredflow_adapter.uninstall()
        if opts.offloads is not None:
            opts.offloads.uninstall()
            opts.offloads.close()

    stopped_by = ""
    if signals.signum is not None:
        status = "stopped"
        stopped_by = signal.Signals(signals.signum).name
        what = "Ctrl-C (SIGINT)" if signals.signum == signal.SIGINT else stopped_by
        notes.append(f"stopped by {what}: the report covers what ran until then")
    if left_running:
        notes.append(f"wiredprof ended {len(left_running)} process(es) the flow left running "
                     f"(pids {', '.join(map(str, left_running[:8]))})")
    if rec.killed:
        status = "failed"
        error = error or rec.killed[0]
        notes.extend(k.message for k in rec.killed)
    left = _user_threads(before)
    if left:
        notes.append(f"{len(left)} thread(s) of the flow were still running when the report was made")
    if watchdog.ended_by == "never started" and not stopped_by:
        raise FlowNeverStartedError(
            f"{flow} never started its pipelines within {opts.start_limit_s:g} s (no launch_flow call, no stage "
            f"ran): it was stopped and no profile was saved; if its start-up takes longer, raise --start-limit")
    if not any(a.calls or a.sampled or a.errors for a in rec.stages.values()):
        if stopped_by:
            raise NoStagesError(f"{flow} was stopped ({stopped_by}) after {wall:.1f} s, before any pipeline stage ran")
        raise NoStagesError(
            f"{flow} ran for {wall:.1f} s but no pipeline stage was seen: build it with wiredflow, "
            "or mark stages with wiredprof.stage(...) (see README)"
        )
    if flows:
        modes = sorted({f.mode for f in flows})
        rec.mode = modes[0]
        if len(modes) > 1:
            notes.append(f"the script's flows ran in different modes: {', '.join(modes)}")
    limits = {"duration_s": opts.duration_s, "runs": opts.runs, "call_trees": opts.call_trees,
              "start_limit_s": opts.start_limit_s}
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
        startup_s=startup_s,
    )
    profile = _with_flows(profile, flows)
    missing = dict(profile.missing)
    if threads.lost:
        missing[", ".join(threads.missing)] = threads.lost
    profile = replace(profile, stopped_by=stopped_by, missing=missing)
    return analyze(profile)


def run_project(
    flow: str,
    args: list[str] | None = None,
    options: RunOptions | None = None,
    *,
    project: ProjectConfig | None = None,
    apply_plan: bool = True,
    flow_log: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Profile:
    """Run `flow` as a project's commands do (`analyze`, `run`): `run_flow` with more around it.

    The project's offload plan is applied (unless `apply_plan` is False: every stage runs
    here), after checking it still names stages the flow has and connecting each host once;
    the flow's own output goes to `flow_log` when given; the profile is kept as the
    project's last one (`statedir`). `say` is told which stages run where.
    """
    config = project or ProjectConfig.find()
    args = list(args or [])
    opts = options or RunOptions()
    runtime = None
    if apply_plan:
        entries = read_offloads(config)
        if entries:
            check_offloads_exist(entries, discover_stages(flow, args), flow)
            runtime = open_runtime(config, entries)
            if say is not None:
                say("wiredprof: offloaded: " + ", ".join(f"{e.stage} -> {e.host}" for e in entries.values()))
    console = None
    if flow_log is not None and opts.console is None:
        try:  # wiredprof's own lines still reach the terminal while the flow's go to the log
            console = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        except (OSError, ValueError, AttributeError):
            console = None
    try:
        with flow_output_to(flow_log):
            profile = run_flow(flow, args, replace(opts, offloads=runtime, console=opts.console or console))
    finally:
        if console is not None:
            console.close()
        done = getattr(opts.progress, "done", None)  # a live progress line is cleared
        if callable(done):
            done()
    try:
        save_last_profile(profile, config.root)
    except OSError as exc:
        log.warning("wiredprof: could not keep the last profile in %s: %s", config.root, exc.strerror)
    return profile


@contextlib.contextmanager
def flow_output_to(path: str | None) -> Iterator[None]:
    """Send the flow's stdout and stderr (its processes' too: file descriptors 1 and 2) to a file."""
    if path is None:
        yield
        return
    try:
        log_file = open(path, "ab")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        log_file.close()


def _end_multiprocessing_helpers(tree: ProcessTree) -> set[int]:
    """Stop a forkserver the run started (the next run needs one that joins it); keep the resource tracker.

    multiprocessing's resource tracker serves this process beyond the run (it unlinks
    semaphores at exit) and ends with it: killing it makes multiprocessing relaunch it and
    print tracebacks. Returns the PIDs to keep.
    """
    keep: set[int] = set()
    try:
        from multiprocessing import forkserver, resource_tracker

        pid = resource_tracker._resource_tracker._pid  # type: ignore[attr-defined]
        if pid is not None:
            keep.add(int(pid))
        server: Any = forkserver._forkserver  # type: ignore[attr-defined]
        if server._forkserver_pid is not None and server._forkserver_pid in tree.members():
            server._stop()
    except Exception:  # noqa: BLE001 - private parts of multiprocessing: best effort
        log.debug("could not stop multiprocessing's helpers", exc_info=True)
    return keep


def _offloads_file(runtime: OffloadRuntime | None, run_dir: str) -> str | None:
    """The offload plan in the run's directory, for processes that are spawned rather than forked."""
    if runtime is None:
        return None
    try:
        data = pickle.dumps(runtime.for_spawned_process())
    except Exception as exc:  # noqa: BLE001 - forked processes still get the plan
        log.warning("wiredprof: spawned processes will run every stage locally: %s", exc)
        return None
    path = os.path.join(run_dir, "offloads.pickle")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _set_environment(values: dict[str, str]) -> dict[str, str | None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    return saved


def _restore_environment(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _flow_infos(control: RunControl) -> list[FlowInfo]:
    """The run's `launch_flow` calls, as the profile shows them."""
    try:
        entries = control.flows()
    except OSError:
        return []
    now = control.clock()
    return [
        FlowInfo(e.number, list(e.pipelines.values()), e.mode, max(0.0, e.start - control.started),
                 max(0.0, (e.end if e.end is not None else now) - e.start), e.pid, e.end is not None)
        for e in entries
    ]


def _stdout_fd_to_stderr() -> int | None:
    """Point file descriptor 1 at stderr for the run; the saved descriptor (None when fd 1 is not
    there). `sys.stdout = sys.stderr` is not enough: a spawned or forkserver process of the flow
    gets a fresh `sys.stdout` on fd 1, and its prints went into `--json`'s output."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        return None
    return saved


def _restore_stdout_fd(saved: int | None) -> None:
    if saved is None:
        return
    try:
        sys.stderr.flush()
        os.dup2(saved, 1)
    finally:
        os.close(saved)


def _with_flows(profile: Profile, flows: list[FlowInfo]) -> Profile:
    """Each pipeline and stage row says which flow it belongs to; rows in launch order."""
    if not flows:
        return profile
    number = {p: f.number for f in flows for p in f.pipelines}
    pipelines = sorted((replace(p, flow=number.get(p.name, 1)) for p in profile.pipelines), key=lambda p: p.flow)
    stages = sorted((replace(s, flow=number.get(s.pipeline, 1)) for s in profile.stages), key=lambda s: s.flow)
    return replace(profile, pipelines=pipelines, stages=stages, flows=flows)


def _hard_exit(signum: int, tree: ProcessTree, threads: ThreadStateSampler, control: RunControl,
               console: Any) -> None:
    """A second Ctrl-C: end every process of the run and leave now, without a report."""
    try:
        out = console or sys.stderr
        out.write("\nwiredprof: interrupted again: stopped at once, no profile saved\n")
        out.flush()
        tree.stop(grace_s=0.0, sig=signal.SIGKILL)
        threads.kill()
        control.unshare()
    finally:
        os._exit(128 + signum)


def _first_stage_error(rec: Recorder) -> ErrorInfo | None:
    for acc in rec.stages.values():
        if acc.last_error is not None:
            return acc.last_error
    return None


def _wait_for_threads(before: set[threading.Thread], watchdog: _Watchdog, at_most_s: float | None = None) -> None:
    """`python flow.py` waits for the flow's non-daemon threads; so do we, within the run's limits."""
    end = watchdog.control.clock() + at_most_s if at_most_s is not None else None
    for t in _user_threads(before):
        while t.is_alive():
            if watchdog.must_stop_waiting() or (end is not None and watchdog.control.clock() >= end):
                return
            t.join(timeout=0.1)
