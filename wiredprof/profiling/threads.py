"""What each thread of the flow is doing, sampled from /proc (Linux) without a profile hook.

Every `interval_s` the sampler reads, for every thread of this process, its CPU time
(`/proc/self/task/TID/schedstat`) and, for a thread that is inside a stage call, whether it
is running, blocked on a futex (the GIL or a lock) while other threads burn CPU, or
blocked on anything else (I/O, sleep). That tells the three kinds of wait apart:

- running on the CPU;
- waiting for the GIL while other threads run Python (moving the stage to a faster CPU
  helps less than its CPU share suggests; moving the *others* may help more);
- waiting on I/O or a sleep (a faster CPU will not help at all).

It also accumulates, per stage, the CPU time other threads used while the stage ran:
who competed with it, including wiredflow's own loops (framework, not a stage).
"""
from __future__ import annotations

import logging
import os
import platform
import threading

from wiredprof.profiling.recorder import Recorder, ThreadInfo

__all__ = ["ThreadStateSampler", "FRAMEWORK_SUFFIX", "proc_available"]

log = logging.getLogger(__name__)

FRAMEWORK_SUFFIX = " (framework)"
_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine(), -1)
_TASKS = "/proc/self/task"


def proc_available() -> bool:
    """True where per-thread /proc accounting works (Linux)."""
    return os.path.exists(f"{_TASKS}/{threading.get_native_id()}/schedstat")


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def _cpu_ns(tid: int) -> int | None:
    text = _read(f"{_TASKS}/{tid}/schedstat")
    return int(text.split()[0]) if text else None


def _state(tid: int) -> str:
    text = _read(f"{_TASKS}/{tid}/stat")
    if not text:
        return "?"
    return text[text.rfind(")") + 2 : text.rfind(")") + 3]


def _in_futex(tid: int) -> bool:
    text = _read(f"{_TASKS}/{tid}/syscall")
    if not text:
        return False
    head = text.split(maxsplit=1)[0]
    return head.isdigit() and int(head) == _FUTEX


class ThreadStateSampler:
    """A daemon thread that samples thread states into the recorder's accumulators."""

    def __init__(self, rec: Recorder, interval_s: float = 0.05) -> None:
        self.rec = rec
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[int, int] = {}
        self._own_tids: set[int] = set()
        self.ticks = 0

    def start(self) -> None:
        if not proc_available():
            self.rec.notes.append("thread states not sampled: /proc per-thread accounting is not available")
            return
        self._last = self._read_all()
        self._thread = threading.Thread(target=self._run, name="wiredprof-threads", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling after one last reading of every thread's CPU."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None
        self._tick()

    def _run(self) -> None:
        self._own_tids.add(threading.get_native_id())
        while not self._stop.wait(self.interval_s):
            try:
                self._tick()
            except Exception:  # sampling must never break the flow
                log.debug("thread sampling failed", exc_info=True)

    def _read_all(self) -> dict[int, int]:
        out = {}
        try:
            tids = [int(t) for t in os.listdir(_TASKS)]
        except OSError:
            return out
        for tid in tids:
            ns = _cpu_ns(tid)
            if ns is not None:
                out[tid] = ns
        return out

    def _tick(self) -> None:
        rec = self.rec
        now = self._read_all()
        deltas = {tid: (ns - self._last.get(tid, ns)) / 1e9 for tid, ns in now.items()}
        self._last = now
        self.ticks += 1
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        for tid, ns in now.items():
            info = rec.threads.get(tid)
            if info is None:
                if tid in self._own_tids or names.get(tid, "").startswith("wiredprof-"):
                    continue
                role = "main" if tid == os.getpid() else "other"
                info = rec.threads[tid] = ThreadInfo(names.get(tid, f"thread {tid}"), "", role)
            info.cpu = ns / 1e9
        active = dict(rec.active)
        for tid, acc in active.items():
            others = {t: d for t, d in deltas.items() if t != tid and d > 0 and t not in self._own_tids}
            state = _state(tid)
            if state == "R":
                acc.samples_running += 1
            elif others and _in_futex(tid):
                acc.samples_lock_wait += 1
            else:
                acc.samples_io_wait += 1
            for t, d in others.items():
                label = self._label(t, active, names)
                if label:
                    acc.competitors[label] = acc.competitors.get(label, 0.0) + d

    def _label(self, tid: int, active: dict[int, object], names: dict[int, str]) -> str | None:
        running = active.get(tid)
        if running is not None:
            return str(getattr(running, "name", running))
        info = self.rec.threads.get(tid)
        if info is None:
            name = names.get(tid)
            return None if name is None or name.startswith("wiredprof-") else f"thread {name}"
        if info.name.startswith("wiredprof-"):
            return None
        if info.role == "pipeline":
            return f"{info.pipeline} thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "mqtt-network":
            return f"{info.pipeline} MQTT network thread outside stages{FRAMEWORK_SUFFIX}"
        if info.role == "main":
            return f"main thread{FRAMEWORK_SUFFIX}"
        return f"thread {info.name}"

