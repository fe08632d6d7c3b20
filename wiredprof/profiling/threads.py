"""Thread states of the flow, sampled from outside the GIL (see statesampler.py).

The recorder keeps a shared table of (thread id, stage number) up to date on every
stage call (two integer stores); a small sampler process reads it with /proc and tells,
per stage: running on the CPU, waiting for the GIL (or a lock) while other threads ran,
or waiting on I/O. Its report is folded into the stage accumulators at the end.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

from wiredprof.profiling.recorder import Recorder, StageAccumulator, ThreadInfo
from wiredprof.profiling.statesampler import SLOTS

__all__ = ["ThreadStateSampler", "FRAMEWORK_SUFFIX", "proc_available"]

log = logging.getLogger(__name__)

FRAMEWORK_SUFFIX = " (framework)"


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}, no report"


def proc_available() -> bool:
    """True where per-thread /proc accounting works (Linux)."""
    return os.path.exists(f"/proc/self/task/{os.getpid()}/schedstat")


class ThreadStateSampler:
    """Starts the sampler process, shares the table with the recorder, folds in the report."""

    def __init__(self, rec: Recorder, interval_s: float = 0.02) -> None:
        self.rec = rec
        self.interval_s = interval_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._mm: mmap.mmap | None = None
        self._path: str | None = None
        self.ticks = 0
        self.lost = ""  # why the thread-state figures are missing ("" when they are not)

    @property
    def table_path(self) -> str | None:
        """The shared (thread id, stage number) table, for processes that map it by path."""
        return self._path if self._proc is not None else None

    @property
    def pid(self) -> int | None:
        """The sampler process's id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def kill(self) -> None:
        """End the sampler process now, without its report."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            self.rec.attach_state_table(None)
            self._cleanup()

    def start(self) -> None:
        """Start sampling (a note in the profile says why, when it cannot)."""
        if not proc_available():
            self.rec.notes.append("thread states not sampled: /proc per-thread accounting is not available")
            return
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, self._path = tempfile.mkstemp(prefix="wiredprof-states-", dir=shm)
        try:
            os.ftruncate(fd, SLOTS * 16)
            self._mm = mmap.mmap(fd, SLOTS * 16)
        finally:
            os.close(fd)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "wiredprof.profiling.statesampler", self._path, str(self.interval_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            # Its own session: a Ctrl-C sent to the terminal's process group must not kill it.
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != b"ready":
            self.rec.notes.append("thread states not sampled: the sampler process did not start")
            self.lost = "the thread-state sampler process did not start"
            self._cleanup()
            return
        self.rec.attach_state_table(memoryview(self._mm).cast("q"))

    def stop(self) -> None:
        """Stop the sampler process and fold its report into the stages."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        try:
            out, _ = proc.communicate(input=b"", timeout=10)
            report = json.loads(out.decode() or "{}")
            if proc.returncode != 0 or not out.strip():
                raise ValueError(_exit_reason(proc.returncode))
        except (subprocess.TimeoutExpired, ValueError) as exc:
            proc.kill()
            proc.wait()
            self.rec.notes.append(f"thread states lost: the sampler process failed ({exc})")
            self.lost = f"the thread-state sampler process failed ({exc})"
            report = {}
        finally:
            self.rec.attach_state_table(None)
            self._cleanup()
        if report:
            self._fold(report)

    def _cleanup(self) -> None:
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a view still exported (a forked child's); the OS frees it
                pass
            self._mm = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass
            self._path = None

    def _fold(self, report: dict[str, Any]) -> None:
        rec = self.rec
        self.ticks = int(report.get("ticks", 0))
        by_tid = rec.threads_by_tid()
        for tid_s, (tgid, cpu) in report.get("threads", {}).items():
            info = by_tid.get(int(tid_s))
            if info is not None:
                info.cpu = max(info.cpu, float(cpu))
        for number_s, (running, lock_wait, io_wait, comps, rss_growth) in report.get("stages", {}).items():
            acc = rec.accumulator_by_number(int(number_s))
            if acc is None:
                continue
            acc.rss_peak = max(acc.rss_peak, int(rss_growth))
            acc.samples_running += running
            acc.samples_lock_wait += lock_wait
            acc.samples_io_wait += io_wait
            for tid, number, cpu in comps:
                label = self._label(int(tid), rec.accumulator_by_number(int(number)), by_tid)
                if label is None:
                    continue
                acc.competitors[label] = acc.competitors.get(label, 0.0) + float(cpu)

    @staticmethod
    def _label(tid: int, running: StageAccumulator | None, by_tid: dict[int, ThreadInfo]) -> str | None:
        if running is not None:
            return running.name
        info = by_tid.get(tid)
        if info is None:
            return f"thread {tid}"
        if info.name.startswith("wiredprof-"):
            return None  # wiredprof's own watchdog and inbox reader
        if info.role == "pipeline":
            return f"{info.pipeline} thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "mqtt-network":
            return f"{info.pipeline} MQTT network thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "main":
            return f"main thread{FRAMEWORK_SUFFIX}"
        return f"thread {info.name}"
