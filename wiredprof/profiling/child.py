"""Joins a process that was spawned, not forked, to the run in progress (spawn, forkserver, any `python`).

A forked process inherits the run's recorder, control and patched wiredflow. A spawned
one starts a fresh interpreter: the runner puts `childboot/` on `PYTHONPATH`, whose
`sitecustomize` calls `attach_from_environment()` at start-up. From `WIREDPROF_RUN` it
rebuilds a recorder that forwards every record to the run's inbox, the run's stop
conditions (shared stop flag, same monotonic deadline), and the wiredflow import hook.
It also makes the forked descendants of any process of the run stop on Ctrl-C
instead of dying mid-stage (`stop_on_interrupt`).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["ENV", "DISCOVERY_ENV", "BOOT_DIR", "child_environment", "attach_from_environment", "stop_on_interrupt"]

log = logging.getLogger(__name__)

ENV = "WIREDPROF_RUN"
DISCOVERY_ENV = "WIREDPROF_DISCOVERY"  # the PID of a discovery process (see discovery.py)
BOOT_DIR = str(Path(__file__).with_name("childboot"))


def child_environment(inbox: str, control_config: dict[str, Any], call_trees: bool,
                      states: str | None = None, offloads: str | None = None) -> dict[str, str]:
    """The variables that make a spawned Python process join this run.

    `states`: the thread-state table's file; `offloads`: a file with the run's offload plan.
    """
    pythonpath = os.pathsep.join(p for p in [BOOT_DIR, os.environ.get("PYTHONPATH", "")] if p)
    run = {"inbox": inbox, "owner": os.getpid(), "control": control_config, "call_trees": call_trees,
           "states": states, "offloads": offloads}
    return {ENV: json.dumps(run), "PYTHONPATH": pythonpath}


def _request_stop(signum: int, frame: Any) -> None:
    from wiredprof.profiling.control import current_control

    control = current_control()
    if control is not None:
        control.request_stop()


def stop_on_interrupt() -> None:
    """In a child process of the run: Ctrl-C (the terminal signals the whole group) asks the run to stop.

    The run then ends each pipeline at its next boundary and saves what it measured; the
    default, KeyboardInterrupt in the middle of a stage, would lose the call and its records.
    """
    try:
        signal.signal(signal.SIGINT, _request_stop)
    except ValueError:  # not the main thread of the main interpreter
        log.debug("wiredprof: cannot handle SIGINT here", exc_info=True)


def attach_from_environment() -> bool:
    """Join the run named in `WIREDPROF_RUN`, if any and if this process is not already part of it."""
    discovering = os.environ.get(DISCOVERY_ENV)
    if discovering and discovering.isdigit() and int(discovering) != os.getpid():
        from wiredprof.discovery import patch_launch_flow

        patch_launch_flow(int(discovering))
        return True
    raw = os.environ.get(ENV)
    if not raw:
        return False
    from wiredprof.profiling.recorder import Recorder, current_recorder, set_current_recorder

    try:
        run = json.loads(raw)
        owner = int(run["owner"])
    except (ValueError, KeyError, TypeError):
        return False
    if owner == os.getpid() or current_recorder() is not None:
        return False
    from wiredprof.adapters import wiredflow as wiredflow_adapter
    from wiredprof.profiling.control import RunControl, set_current_control

    rec = Recorder()
    try:
        rec.connect_to_parent(str(run["inbox"]), owner)
    except OSError as exc:  # the run is over: run as a plain process
        log.debug("wiredprof: run %s is gone: %s", run.get("inbox"), exc)
        return False
    if run.get("call_trees"):
        from wiredprof.profiling.calltree import CallTreeSampler

        rec.call_trees = CallTreeSampler()
    if run.get("states"):
        _attach_state_table(rec, str(run["states"]))
    if run.get("offloads"):
        _install_offloads(rec, str(run["offloads"]))
    control = RunControl.from_config(dict(run.get("control") or {}), cycles_done=rec.cycles_done)
    set_current_recorder(rec)
    set_current_control(control)
    from wiredprof.profiling import callbacks

    # call-backs to host A count here too
    wiredflow_adapter.install_import_hook(after_import=[callbacks.install(rec)])
    stop_on_interrupt()
    atexit.register(rec.flush)
    return True


def _install_offloads(rec: Any, path: str) -> None:
    """The run's offloaded stages run on their hosts from this process too.

    Which stages go where is known at once. How to connect is unpickled now, or, if its
    module is not importable yet, at the first call of an offloaded stage, once
    multiprocessing has given this process the parent's `sys.path`.
    """
    import pickle

    from wiredprof.adapters import set_stage_swap
    from wiredprof.errors import WiredprofError
    from wiredprof.offload.runtime import OffloadRuntime

    with open(path, "rb") as f:
        entries, connect = pickle.loads(f.read())
    for name, entry in pickle.loads(entries).items():
        rec.stage_hosts[name] = entry.host
    loaded: list[OffloadRuntime] = []
    lock = threading.Lock()

    def runtime() -> OffloadRuntime:
        with lock:
            if not loaded:
                try:
                    rt = OffloadRuntime.from_spawned(entries, connect)
                except Exception as exc:  # noqa: BLE001 - the stage fails with this, in one line
                    raise WiredprofError(f"the offload plan does not load in process {os.getpid()} "
                                         f"(spawned by the flow): {type(exc).__name__}: {exc}") from None
                rt.install(rec)
                rt.uninstall()  # the SpawnedSwap below is the adapters' swap again, and reaches it
                atexit.register(rt.close)
                loaded.append(rt)
        return loaded[0]

    class SpawnedSwap:
        """The adapters' StageSwap here: loads the runtime at the first offloaded stage's call."""

        def wiredflow_stage(self, ref: Any, stage: Any, target: Any) -> Any:
            if f"{ref.pipeline}.{ref.stage}" not in rec.stage_hosts:
                return None
            return runtime().wiredflow_stage(ref, stage, target)

        def plain_stage(self, name: str, fn: Any) -> Any:
            return runtime().plain_stage(name, fn) if name in rec.stage_hosts else None

    set_stage_swap(SpawnedSwap())
    try:  # now, with this process's own sys.path; else at the first call, with the parent's
        runtime()
    except WiredprofError:
        pass


def _attach_state_table(rec: Any, path: str) -> None:
    """Share the run's thread-state table, so the sampler sees this process's stages too."""
    import mmap

    try:
        fd = os.open(path, os.O_RDWR)
        try:
            table = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:
        log.debug("wiredprof: no thread-state table here: %s", exc)
        return
    rec.attach_state_table(memoryview(table).cast("q"))


def _after_fork_in_child() -> None:
    from wiredprof.profiling.control import current_control

    if current_control() is None:
        return
    try:
        # The runner's own handlers are inherited: SIGTERM must end a child again (a pool's
        # terminate() relies on it), and Ctrl-C must ask the run to stop.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:
        return
    stop_on_interrupt()


os.register_at_fork(after_in_child=_after_fork_in_child)
