"""The thread-state sampler process: reads the flow's threads from /proc, outside the GIL.

A sampler thread inside the flow would need the GIL to wake up, and every time it got
it, the thread it took the GIL from would look "running": its samples would be biased
exactly where the question is. This process (stdlib only, started by
`ThreadStateSampler`) reads a shared table of (thread id, stage number) that the
recorder keeps up to date, and every `interval` seconds classifies each thread that is
inside a stage:

- `running`: on a CPU (state R);
- `lock_wait`: blocked in a futex (the GIL or a lock) while other threads of its process
  used CPU in that interval;
- `io_wait`: blocked on anything else (I/O, sleep), or in a futex while nothing else ran.

how much the process's resident memory grew during a call (its RSS at each tick against its
RSS at the tick before the call began: the stage's peak memory, to 20 ms resolution).

State R counts a thread that is runnable but queued for a core (a busy machine, a cgroup
CPU quota) as well as one on a core: the share of `running` samples, against the CPU time
the stage really got, tells how long it waited for a core (see aggregate.py).

It also adds up, per stage, the CPU other threads of the same process used while the
stage ran. It stops when its stdin closes and prints one JSON object.
"""
from __future__ import annotations

import json
import mmap
import os
import platform
import select
import sys
from typing import Any

SLOTS = 512
_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine(), -1)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def _tgid(tid: int) -> int | None:
    text = _read(f"/proc/{tid}/status")
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1])
    return None


def _cpu_ns(tgid: int, tid: int) -> int | None:
    """Nanoseconds a thread has spent on a CPU."""
    text = _read(f"/proc/{tgid}/task/{tid}/schedstat")
    return int(text.split()[0]) if text else None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss(tgid: int) -> int | None:
    """Resident memory of a process, in bytes."""
    text = _read(f"/proc/{tgid}/statm")
    return int(text.split()[1]) * _PAGE if text else None


def _state(tgid: int, tid: int) -> str:
    text = _read(f"/proc/{tgid}/task/{tid}/stat")
    if not text:
        return "?"
    i = text.rfind(")")
    return text[i + 2 : i + 3]


def _in_futex(tgid: int, tid: int) -> bool:
    text = _read(f"/proc/{tgid}/task/{tid}/syscall")
    if not text:
        return False
    head = text.split(maxsplit=1)[0]
    return head.isdigit() and int(head) == _FUTEX


class Sampler:
    """Accumulates per-stage state counts and competitor CPU from successive ticks."""

    def __init__(self, table: memoryview, own_pid: int) -> None:
        self.table = table
        self.own_pid = own_pid
        self.tgids: dict[int, int | None] = {}
        self.last_cpu: dict[int, int] = {}  # tid -> cumulative ns
        self.last_rss: dict[int, int] = {}  # tgid -> resident bytes at the previous tick
        self.watched: set[int] = set()  # processes whose RSS is read every tick (baselines)
        self.calls: dict[int, tuple[int, int]] = {}  # tid -> (stage number, process RSS before the call)
        self.thread_cpu: dict[int, int] = {}  # tid -> last cumulative ns
        self.thread_tgid: dict[int, int] = {}
        # stage number -> [running, lock, io, {(tid, its stage number): cpu s}]
        self.stages: dict[int, list[Any]] = {}
        self.ticks = 0

    def _active(self) -> dict[int, int]:
        """Threads inside a stage now; every process with a row in the table is watched."""
        t = self.table
        out = {}
        for i in range(SLOTS):
            tid = t[2 * i]
            if tid:
                if tid not in self.tgids:
                    tgid = self.tgids[tid] = _tgid(tid)
                    if tgid is not None:
                        self.watched.add(tgid)
                stage = t[2 * i + 1]
                if stage:
                    out[tid] = stage
        return out

    def _tasks(self, tgid: int) -> list[int]:
        try:
            return [int(x) for x in os.listdir(f"/proc/{tgid}/task")]
        except OSError:
            return []

    def tick(self) -> None:
        self.ticks += 1
        active = self._active()
        by_process: dict[int, list[int]] = {}
        for tid in active:
            tgid = self.tgids.get(tid)
            if tid not in self.tgids:
                tgid = self.tgids[tid] = _tgid(tid)
            if tgid is not None:
                by_process.setdefault(tgid, []).append(tid)
        # CPU of every thread of the processes that have a thread inside a stage.
        deltas: dict[int, dict[int, float]] = {}
        for tgid in by_process:
            d = deltas[tgid] = {}
            for tid in self._tasks(tgid):
                ns = _cpu_ns(tgid, tid)
                if ns is None:
                    continue
                prev = self.last_cpu.get(tid)
                self.last_cpu[tid] = ns
                self.thread_cpu[tid] = ns
                self.thread_tgid[tid] = tgid
                if prev is not None and ns > prev:
                    d[tid] = (ns - prev) / 1e9
        for tgid, tids in by_process.items():
            d = deltas[tgid]
            rss = _rss(tgid)
            before = self.last_rss.get(tgid, rss)
            for tid in tids:
                stage = active[tid]
                acc = self.stages.get(stage)
                if acc is None:
                    acc = self.stages[stage] = [0, 0, 0, {}, 0]
                if rss is not None:
                    # Memory the call added: the process's RSS now over its RSS just before the call.
                    call = self.calls.get(tid)
                    if call is None or call[0] != stage:
                        call = self.calls[tid] = (stage, before if before is not None else rss)
                    acc[4] = max(acc[4], rss - call[1])
                others = {t: x for t, x in d.items() if t != tid}
                state = _state(tgid, tid)
                if state == "R":
                    acc[0] += 1
                elif others and _in_futex(tgid, tid):
                    acc[1] += 1
                else:
                    acc[2] += 1
                comp = acc[3]
                for t, x in others.items():
                    key = (t, active.get(t, 0))  # which thread, and the stage it was in (0: none)
                    comp[key] = comp.get(key, 0.0) + x
        self.end_tick(active, by_process)

    def end_tick(self, active: dict[int, int], by_process: dict[int, list[int]]) -> None:
        """Forget finished calls and remember each process's RSS for the next call's baseline."""
        for tid in list(self.calls):
            if tid not in active:
                del self.calls[tid]
        for tgid in self.watched | set(by_process):
            rss = _rss(tgid)
            if rss is None:
                self.last_rss.pop(tgid, None)
            else:
                self.last_rss[tgid] = rss

    def result(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "stages": {
                str(k): v[:3] + [[[t, st, x] for (t, st), x in v[3].items()], v[4]]
                for k, v in self.stages.items()
            },
            "threads": {str(t): [self.thread_tgid.get(t, 0), ns / 1e9] for t, ns in self.thread_cpu.items()},
        }


def main(argv: list[str]) -> int:
    path, interval = argv[0], float(argv[1])
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), SLOTS * 16)
    table = memoryview(mm).cast("q")
    sampler = Sampler(table, os.getpid())
    stdin: Any = sys.stdin.buffer
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([stdin], [], [], interval)
        if ready and not stdin.read1(4096):  # EOF: the run is over
            break
        try:
            sampler.tick()
        except Exception as exc:  # keep sampling; report the first problem
            print(f"sampler: {exc!r}", file=sys.stderr)
    sampler.tick()
    sys.stdout.write(json.dumps(sampler.result()) + "\n")
    sys.stdout.flush()
    table.release()
    mm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
