"""When a profiled flow should stop: `--duration` seconds after it started its pipelines, once a
pipeline ran `--runs` cycles, or on request; and when it never starts them within the start limit.

`--duration` counts from the flow's first `launch_flow` (or first stage call of a plain flow),
in whichever process of the run it happens: a flow launched in a spawned pool worker may spend
seconds starting up, and that start-up is not part of the measured run (the profile shows it as
a figure of its own). The deadline uses CLOCK_MONOTONIC, which is the same clock in every process of the
machine, so pipeline processes stop on time without being told. A stop request (Ctrl-C,
SIGTERM) must reach every process of the run however it was started, so it is a byte in
a small shared file that each process maps (forked children inherit the mapping, spawned
ones map it by path). The same file's directory holds the registry of the run's flows:
each `launch_flow` call, in whatever process, gets the next flow number there.
"""
from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from wiredprof.proctree import alive

__all__ = ["RunControl", "FlowEntry", "current_control", "set_current_control"]

_SIZE = 4096
_POLL_S = 0.05
_STOP_AT = 0  # one byte: 1 once a stop was requested
_FLOW_START = struct.Struct("d")  # at _FLOW_START_AT: CLOCK_MONOTONIC of the flow's start, 0.0 before
_FLOW_START_AT = 8


@dataclass(frozen=True)
class FlowEntry:
    """One `launch_flow` call of the run: its number, pipelines (as named in the profile) and lifetime."""

    number: int
    pipelines: dict[str, str]  # the flow's own pipeline name -> its name in the profile
    pid: int
    mode: str
    start: float  # CLOCK_MONOTONIC
    end: float | None = None


class RunControl:
    """The stop conditions of one profiled run, shared by every process of it."""

    def __init__(
        self,
        duration_s: float | None = None,
        runs: int | None = None,
        cycles_done: Callable[[str], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
        start_limit_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.runs = runs
        self.started = clock() if started is None else started
        self.start_limit_s = start_limit_s  # the run ends if the flow has not started by then
        self._flow_started: float | None = None
        self._cycles_done = cycles_done or (lambda pipeline: 0)
        self._stop = threading.Event()
        self._shared: mmap.mmap | None = None
        self.shared_path: str | None = None
        self._flows_local: list[FlowEntry] = []
        self._lock = threading.Lock()

    # -- sharing with other processes ------------------------------------------------
    def share(self) -> str:
        """Create the shared file (before any process of the flow starts); returns its directory."""
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        run_dir = tempfile.mkdtemp(prefix="wiredprof-run-", dir=shm)
        path = os.path.join(run_dir, "control")
        with open(path, "wb") as f:
            f.truncate(_SIZE)
        self._map(path)
        return run_dir

    def _map(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self._shared = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.shared_path = path

    def child_config(self) -> dict[str, Any]:
        """What a spawned process needs to rebuild this control (see `from_config`)."""
        return {"path": self.shared_path, "started": self.started, "duration_s": self.duration_s, "runs": self.runs,
                "start_limit_s": self.start_limit_s}

    @classmethod
    def from_config(cls, config: dict[str, Any], cycles_done: Callable[[str], int] | None = None) -> RunControl:
        """The run's control in a spawned process (CLOCK_MONOTONIC is the machine's: the deadline holds)."""
        control = cls(config.get("duration_s"), config.get("runs"), cycles_done, started=config.get("started"),
                      start_limit_s=config.get("start_limit_s"))
        if config.get("path"):
            control._map(str(config["path"]))
        return control

    def unshare(self) -> None:
        """Remove the shared file and its directory (the run is over)."""
        path, self.shared_path = self.shared_path, None
        if self._shared is not None:
            try:
                self._shared.close()
            except BufferError:  # pragma: no cover - nothing exports views of it
                pass
            self._shared = None
        if path is not None:
            run_dir = Path(path).parent
            for f in run_dir.iterdir():
                try:
                    f.unlink()
                except OSError:
                    pass
            try:
                run_dir.rmdir()
            except OSError:
                pass

    # -- the flow's start ---------------------------------------------------------------
    def mark_flow_started(self) -> None:
        """The flow starts running pipelines now (`launch_flow`, a plain flow's first pipeline or stage):
        `--duration` counts from the first such moment in any process of the run."""
        if self._flow_started is not None or self.flow_started is not None:
            return
        now = self.clock()
        self._flow_started = now
        shared = self._shared
        if shared is not None:
            try:
                _FLOW_START.pack_into(shared, _FLOW_START_AT, now)
            except (ValueError, TypeError):  # closed: the run is over anyway
                pass

    @property
    def flow_started(self) -> float | None:
        """When the flow (in any process of the run) started its pipelines, or None before."""
        if self._flow_started is None and self._shared is not None:
            try:
                (at,) = _FLOW_START.unpack_from(self._shared, _FLOW_START_AT)
            except (ValueError, TypeError):
                return None
            if at > 0.0:
                self._flow_started = at
        return self._flow_started

    @property
    def startup_s(self) -> float | None:
        """Seconds from the run's start to the flow's start (None while it has not started)."""
        at = self.flow_started
        return None if at is None else max(0.0, at - self.started)

    @property
    def deadline(self) -> float | None:
        """When `--duration` is up (CLOCK_MONOTONIC); None without one or before the flow started."""
        at = self.flow_started
        return at + self.duration_s if at is not None and self.duration_s is not None else None

    @property
    def never_started(self) -> bool:
        """True once the start limit passed and the flow has not started its pipelines."""
        return (self.start_limit_s is not None and self.flow_started is None
                and self.clock() >= self.started + self.start_limit_s)

    # -- stopping ---------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop every pipeline of every process of the run at its next boundary."""
        self._stop.set()
        shared = self._shared
        if shared is not None:
            try:
                shared[_STOP_AT] = 1
            except ValueError:  # closed: the run is over anyway
                pass

    @property
    def stop_requested(self) -> bool:
        if self._stop.is_set():
            return True
        shared = self._shared
        if shared is not None:
            try:
                if shared[_STOP_AT]:
                    self._stop.set()
                    return True
            except ValueError:
                pass
        deadline = self.deadline
        if deadline is not None:
            return self.clock() >= deadline
        return self.never_started

    def should_stop(self, pipeline: str | None = None) -> bool:
        """True once the run is over (`stop_requested`), or once `pipeline` completed its `--runs` cycles."""
        if self.stop_requested:
            return True
        return pipeline is not None and self.runs is not None and self._cycles_done(pipeline) >= self.runs

    def will_stop_within(self, pipeline: str | None, seconds: float) -> bool:
        """True when the run would be over by the time a `seconds` sleep ends."""
        if self.should_stop(pipeline):
            return True
        deadline = self.deadline
        return deadline is not None and self.clock() + seconds >= deadline

    def sleep(self, seconds: float, pipeline: str | None = None) -> None:
        """Sleep like `time.sleep`, but wake up as soon as the run should stop."""
        end = self.clock() + max(0.0, float(seconds))
        while not self.should_stop(pipeline):
            left = end - self.clock()
            if left <= 0:
                return
            self._stop.wait(min(left, _POLL_S))

    # -- the flows of the run -----------------------------------------------------------
    def _flows_file(self) -> Path | None:
        return Path(self.shared_path).parent / "flows.json" if self.shared_path else None

    def _edit_flows(self, edit: Callable[[list[FlowEntry]], Any], write: bool = True) -> Any:
        """Read (and change and write) the registry of flows under a lock every process respects."""
        path = self._flows_file()
        if path is None:
            with self._lock:
                return edit(self._flows_local)
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as f:
                text = f.read()
                flows = [FlowEntry(**d) for d in json.loads(text)] if text.strip() else []
                result = edit(flows)
                if write:
                    f.seek(0)
                    f.truncate()
                    f.write(json.dumps([e.__dict__ for e in flows]))
            return result
        finally:
            os.close(fd)  # releases the lock

    def register_flow(self, pipelines: list[str], mode: str) -> FlowEntry:
        """Number a `launch_flow` call; a pipeline name an earlier flow used gets `#N` (its flow's number)."""

        self.mark_flow_started()

        def add(flows: list[FlowEntry]) -> FlowEntry:
            number = len(flows) + 1
            used = {q for e in flows for q in e.pipelines.values()}
            names = {p: p if p not in used else f"{p}#{number}" for p in pipelines}
            entry = FlowEntry(number, names, os.getpid(), mode, self.clock())
            flows.append(entry)
            return entry

        result: FlowEntry = self._edit_flows(add)
        return result

    def end_flow(self, number: int) -> None:
        """Its `launch_flow` call returned (or raised)."""
        now = self.clock()

        def end(flows: list[FlowEntry]) -> None:
            for i, e in enumerate(flows):
                if e.number == number:
                    flows[i] = replace(e, end=now)

        self._edit_flows(end)

    def flows(self) -> list[FlowEntry]:
        """Every flow of the run so far, in launch order."""
        result: list[FlowEntry] = self._edit_flows(lambda flows: list(flows), write=False)
        return result

    def flows_running(self) -> int:
        """Flows whose `launch_flow` has not returned, in a process still alive."""
        return sum(1 for e in self.flows() if e.end is None and alive(e.pid))


_current: RunControl | None = None


def current_control() -> RunControl | None:
    """The stop conditions of the run in progress, or None outside wiredprof."""
    return _current


def set_current_control(control: RunControl | None) -> None:
    global _current
    _current = control
