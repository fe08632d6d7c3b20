"""Thread states of the flow, sampled from outside the GIL (see statesampler.py).

The recorder keeps a shared table of (thread id, stage number, since, previous stage) up
to date on every stage call (four stores; statetable.py); a small sampler process reads
it with /proc and tells, per stage: running on the CPU, waiting for the GIL (or a lock)
while other threads ran, or waiting on I/O, and which other threads used CPU meanwhile.
Its report is folded into the stage accumulators at the end. If the sampler process
dies, its last snapshot (written every second) is folded instead, and the profile's
notes say which figures are missing or partial.
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

from wiredprof.profiling.accumulators import StageAccumulator, ThreadInfo
from wiredprof.profiling.childlink import OWN_THREAD_PREFIX
from wiredprof.profiling.recorder import Recorder
from wiredprof.profiling.statetable import SIZE, views

__all__ = ["ThreadStateSampler", "FRAMEWORK_SUFFIX", "SAMPLER_FIGURES", "proc_available"]

log = logging.getLogger(__name__)

FRAMEWORK_SUFFIX = " (framework)"
# What the profile loses without the sampler.
USER_THREAD_CPU_S = 0.1  # a thread that ran no stage is listed once it used this much CPU
SAMPLER_FIGURES = ("gil wait", "core wait", "bound", "competitors", "framework cpu", "memory (rss peak)")


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
        self._snapshot: str | None = None
        self.ticks = 0
        self.cpu_s = 0.0  # the sampler process's own CPU time
        self.missing: list[str] = []  # figures the profile lacks because the sampler failed
        self.lost = ""  # why those figures are missing or partial ("" when they are not)

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
            os.ftruncate(fd, SIZE)
            self._mm = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self._snapshot = self._path + ".snapshot"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "wiredprof.profiling.statesampler", self._path, str(self.interval_s),
             self._snapshot],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C to the flow's process group is not for the sampler
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != b"ready":
            self.rec.notes.append("thread states not sampled: the sampler process did not start")
            self.missing = list(SAMPLER_FIGURES)
            self.lost = "the thread-state sampler process did not start"
            self._cleanup()
            return
        self.rec.attach_state_table(*views(self._mm))

    def stop(self) -> None:
        """Stop the sampler process and fold its report (or its last snapshot) into the stages."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        died = proc.poll()  # not None: it ended before we asked it to
        report: dict[str, Any] = {}
        problem = ""
        try:
            out, _ = proc.communicate(input=b"", timeout=10)
            report = json.loads(out.decode() or "{}")
        except (subprocess.TimeoutExpired, ValueError, OSError) as exc:
            proc.kill()
            proc.wait()
            problem = f"failed ({exc})"
        finally:
            self.rec.attach_state_table(None)
        if died is not None or not report:
            problem = problem or _how_it_ended(proc.returncode)
            report = self._read_snapshot()
        self._cleanup()
        if problem:
            self._note_missing(proc.pid, problem, report)
        if report:
            self.cpu_s = float(report.get("cpu_s", 0.0))
            self._fold(report)

    def _read_snapshot(self) -> dict[str, Any]:
        if self._snapshot is None:
            return {}
        try:
            with open(self._snapshot) as f:
                data: dict[str, Any] = json.load(f)
                return data
        except (OSError, ValueError):
            return {}

    def _note_missing(self, pid: int, problem: str, snapshot: dict[str, Any]) -> None:
        figures = ", ".join(SAMPLER_FIGURES)
        self.lost = f"the thread-state sampler process (pid {pid}) {problem}"
        if snapshot:
            upto = float(snapshot.get("partial_at_s", 0.0))
            self.missing = [f"{f} (partial)" for f in SAMPLER_FIGURES]
            self.rec.notes.append(
                f"the thread-state sampler (pid {pid}) {problem}: {figures} cover only its first "
                f"{upto:.1f} s of the run"
            )
        else:
            self.missing = list(SAMPLER_FIGURES)
            self.rec.notes.append(
                f"the thread-state sampler (pid {pid}) {problem}: {figures} are missing "
                "(shown as 0, not measured)"
            )

    def _cleanup(self) -> None:
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a view still exported (a forked child's); the OS frees it
                pass
            self._mm = None
        for path in (self._path, self._snapshot, self._snapshot and self._snapshot + ".tmp"):
            if path:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        self._path = self._snapshot = None

    def _fold(self, report: dict[str, Any]) -> None:
        rec = self.rec
        self.ticks = int(report.get("ticks", 0))
        by_tid = rec.threads_by_tid()
        known = set(rec.threads) | {tid for (_pid, tid) in rec.child_threads}
        for tid_s, (tgid, cpu) in report.get("threads", {}).items():
            tid = int(tid_s)
            info = by_tid.get(tid)
            if info is not None:
                info.cpu = max(info.cpu, float(cpu))
            if tid not in known and float(cpu) >= USER_THREAD_CPU_S:
                # A thread of the flow that never ran a stage: a user's own thread (or a library's).
                name = info.name if info is not None else _comm(int(tgid), tid)
                if not name.startswith(OWN_THREAD_PREFIX):
                    rec.threads[tid] = ThreadInfo(name, "", "other", 0.0, float(cpu))
        if report.get("run_delay"):
            # Run delays were read: a stage the sampler never saw whole ticks of (or never saw:
            # its calls fell between ticks) has a core wait below its resolution.
            for each in list(rec.stages.values()):
                each.queue_measured = True
        for number_s, row in report.get("stages", {}).items():
            running, lock_wait, io_wait, comps, rss_growth = row[:5]
            seen_s = float(row[5]) if len(row) > 5 else 0.0
            acc = rec.accumulator_by_number(int(number_s))
            if acc is None:
                continue
            acc.rss_peak = max(acc.rss_peak, int(rss_growth))
            acc.samples_running += running
            acc.samples_lock_wait += lock_wait
            acc.samples_io_wait += io_wait
            # Charged over the time the sampler saw the stage; as a rate over all its time.
            scale = acc.total / seen_s if seen_s > 0 else 0.0
            if len(row) > 7:
                acc.queue_s += float(row[6]) * scale
                acc.queue_seen_s += seen_s
                acc.queue_whole_s += float(row[7])
                acc.queue_measured = True
            for tid, number, cpu in comps:
                label = self._label(int(tid), rec.accumulator_by_number(int(number)), by_tid)
                if label is None:
                    continue
                acc.competitors[label] = acc.competitors.get(label, 0.0) + float(cpu) * scale

    @staticmethod
    def _label(tid: int, running: StageAccumulator | None, by_tid: dict[int, ThreadInfo]) -> str | None:
        if running is not None:
            return running.name
        info = by_tid.get(tid)
        if info is None:
            return f"thread {tid}"
        if info.name.startswith(OWN_THREAD_PREFIX):
            return None  # wiredprof's own watchdog and inbox reader
        if info.role == "pipeline":
            return f"{info.pipeline} thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "mqtt-network":
            return f"{info.pipeline} MQTT network thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "main":
            return f"main thread{FRAMEWORK_SUFFIX}"
        return f"thread {info.name}"


def _comm(tgid: int, tid: int) -> str:
    """A thread's name as the kernel knows it (gone with the thread)."""
    try:
        with open(f"/proc/{tgid}/task/{tid}/comm") as f:
            return f.read().strip() or f"thread {tid}"
    except OSError:
        return f"thread {tid}"


def _how_it_ended(returncode: int | None) -> str:
    if returncode is None:
        return "did not answer"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited early (status {returncode})"
