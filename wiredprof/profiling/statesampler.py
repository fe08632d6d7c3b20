"""The thread-state sampler process: reads the flow's threads from /proc, outside the GIL.

A sampler thread inside the flow would need the GIL to wake up, and every time it got
it, the thread it took the GIL from would look "running": its samples would be biased
exactly where the question is. This process (stdlib only, started by
`ThreadStateSampler`) reads the state table the recorder keeps up to date (statetable.py)
and, every tick, classifies each thread that is inside a stage:

- `running`: on a CPU (state R);
- `lock_wait`: blocked in a futex (the GIL or a lock) while other threads of its process
  used CPU in that interval;
- `io_wait`: blocked on anything else (I/O, sleep), or in a futex while nothing else ran.

How long a stage waited for a core (a busy machine, a cgroup CPU quota) is the kernel's run
delay of its thread (schedstat), read every tick: a tick the stage covered whole is measured;
a tick it began or ended in gets its share (prorated by overlap), and the seconds seen in
whole ticks say how much of the figure is measured. A stage whose calls are shorter than a
tick is only ever seen in part of one: its core wait is below the sampler's resolution, and
the profile says "not measurable" rather than a number (see aggregate.py).

Per stage it also adds up the CPU other threads of the same process used while the stage
ran: every tick reads every thread's CPU, and each stage is charged the part of the tick
it overlapped (from the row's `since` and `prev`: a call that began or ended inside the
tick gets only its share). It keeps the time it saw each stage for, so the parent can
turn the charged CPU into a rate over the stage's whole time. It also notes how much the
process's resident memory grew during a call (its RSS at each tick against its RSS at
the tick before the call began: the stage's peak memory, to a tick's resolution).

Its cost is bounded, whatever the number of threads: the interval grows so that ticks
take at most `BUDGET` of one core. It ignores SIGINT (a Ctrl-C to the process group is
for the flow), writes its figures so far to a snapshot file every second (read if it
dies), and stops when its stdin closes, printing one JSON object.
"""
from __future__ import annotations

import json
import mmap
import os
import platform
import select
import signal
import sys
import time
from typing import Any

from wiredprof.profiling.statetable import PREV, ROW, SAMPLED, SINCE, SIZE, SLOTS, STAGE, views

BUDGET = 0.02  # share of one core the sampler may use
MAX_INTERVAL_S = 0.5
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


def _schedstat(tgid: int, tid: int) -> tuple[int, int] | None:
    """Nanoseconds a thread has spent on a CPU, and runnable but queued for one (run delay)."""
    text = _read(f"/proc/{tgid}/task/{tid}/schedstat")
    if not text:
        return None
    fields = text.split()
    return int(fields[0]), int(fields[1])


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
    """Accumulates per-stage state counts, competitor CPU and memory from successive ticks."""

    def __init__(self, table: memoryview[int], times: memoryview[float], clock: Any = time.monotonic) -> None:
        self.table = table
        self.times = times
        self.clock = clock
        self.tgids: dict[int, int | None] = {}
        self.last_cpu: dict[int, int] = {}  # tid -> cumulative ns at the previous tick
        self.last_delay: dict[int, int] = {}  # tid -> cumulative run-queue ns at the previous tick
        self.delay: dict[int, float] = {}  # tid -> run-queue seconds since the previous tick
        self.last_rss: dict[int, int] = {}  # tgid -> resident bytes at the previous tick
        self.watched: set[int] = set()  # processes with a row in the table
        self.calls: dict[int, tuple[int, int]] = {}  # tid -> (stage number, process RSS before the call)
        self.seen_stage: dict[int, int] = {}  # tid -> the stage its row showed at the previous tick
        self.thread_tgid: dict[int, int] = {}
        # stage number -> [running, lock, io, {(tid, its stage number): cpu s}, rss growth, seconds seen,
        #                  seconds queued for a core, seconds seen in ticks it covered whole]
        self.stages: dict[int, list[Any]] = {}
        self.ticks = 0
        self.last_tick: float | None = None

    def _rows(self) -> list[tuple[int, int, float, int]]:
        """(tid, stage, since, prev) of every claimed row; every process with a row is watched."""
        t, d = self.table, self.times
        out = []
        for i in range(0, SLOTS * ROW, ROW):
            tid = t[i]
            if tid:
                if tid not in self.tgids:
                    tgid = self.tgids[tid] = _tgid(tid)
                    if tgid is not None:
                        self.watched.add(tgid)
                out.append((tid, t[i + STAGE], d[i + SINCE], t[i + PREV]))
        return out

    def _stage(self, number: int) -> list[Any]:
        acc = self.stages.get(number)
        if acc is None:
            acc = self.stages[number] = [0, 0, 0, {}, 0, 0.0, 0.0, 0.0]
        return acc

    def _thread_cpu(self) -> dict[int, dict[int, float]]:
        """CPU seconds each thread of each watched process used since the previous tick."""
        deltas: dict[int, dict[int, float]] = {}
        for tgid in list(self.watched):
            try:
                tids = [int(x) for x in os.listdir(f"/proc/{tgid}/task")]
            except OSError:
                self.watched.discard(tgid)
                continue
            d = deltas[tgid] = {}
            for tid in tids:
                stat = _schedstat(tgid, tid)
                if stat is None:
                    continue
                ns, delay = stat
                before = self.last_delay.get(tid)
                self.last_delay[tid] = delay
                self.delay[tid] = (delay - before) / 1e9 if before is not None and delay > before else 0.0
                prev = self.last_cpu.get(tid)
                self.last_cpu[tid] = ns
                self.thread_tgid[tid] = tgid
                if prev is not None and ns > prev:
                    d[tid] = (ns - prev) / 1e9
        return deltas

    def tick(self) -> None:
        now = self.clock()
        previous, self.last_tick = self.last_tick, now
        self.ticks += 1
        rows = self._rows()
        deltas = self._thread_cpu()
        if previous is None or now <= previous:
            for tid, stage, _since, _prev in rows:
                self.seen_stage[tid] = stage
            return
        dt = now - previous
        current = {tid: stage for tid, stage, _s, _p in rows}
        sampled = {tid for tid, stage in current.items() if stage == SAMPLED}
        rss_now: dict[int, int | None] = {}
        for tid, stage, since, prev in rows:
            tgid = self.tgids.get(tid)
            if tgid is None:
                continue
            # The parts of this tick each stage of this thread overlapped.
            parts: list[tuple[int, float, bool]] = []  # (stage, overlap, the whole tick)
            if since <= previous:
                parts.append((stage, dt, True))
            else:
                parts.append((stage, max(0.0, now - since), False))
                if prev > 0 and self.seen_stage.get(tid) == prev:
                    parts.append((prev, min(dt, since - previous), False))  # ended inside this tick
            self.seen_stage[tid] = stage
            others = {t: x for t, x in deltas.get(tgid, {}).items() if t != tid and t not in sampled}
            for number, overlap, whole in parts:
                if number <= 0 or overlap <= 0.0:
                    continue
                acc = self._stage(number)
                acc[5] += overlap
                share = overlap / dt
                # The run delay the kernel counted for this thread in the tick: all of it the
                # stage's when it covered the tick, else its share (where in the tick the
                # thread queued is not known: the figure is exact only for whole ticks).
                acc[6] += self.delay.get(tid, 0.0) * share
                if whole:
                    acc[7] += overlap
                comp = acc[3]
                for t, x in others.items():
                    key = (t, max(0, current.get(t, 0)))  # which thread, and the stage it was in (0: none)
                    comp[key] = comp.get(key, 0.0) + x * share
            if stage <= 0:
                continue
            acc = self._stage(stage)
            if tgid not in rss_now:
                rss_now[tgid] = _rss(tgid)
            rss = rss_now[tgid]
            if rss is not None:
                # Memory the call added: the process's RSS now over its RSS just before the call.
                call = self.calls.get(tid)
                if call is None or call[0] != stage:
                    before = self.last_rss.get(tgid, rss)
                    call = self.calls[tid] = (stage, before)
                acc[4] = max(acc[4], rss - call[1])
            state = _state(tgid, tid)
            if state == "R":
                acc[0] += 1
            elif others and _in_futex(tgid, tid):
                acc[1] += 1
            else:
                acc[2] += 1
        for tid in list(self.calls):
            if current.get(tid, 0) <= 0:
                del self.calls[tid]
        for tgid in self.watched:
            rss = rss_now[tgid] if tgid in rss_now else _rss(tgid)
            if rss is None:
                self.last_rss.pop(tgid, None)
            else:
                self.last_rss[tgid] = rss

    def result(self) -> dict[str, Any]:
        return {
            "ticks": self.ticks,
            "run_delay": True,  # stage rows carry queueing and whole-tick seconds (see aggregate.py)
            "stages": {
                str(k): v[:3] + [[[t, st, x] for (t, st), x in v[3].items()], v[4], v[5], v[6], v[7]]
                for k, v in self.stages.items()
            },
            "threads": {str(t): [self.thread_tgid.get(t, 0), ns / 1e9] for t, ns in self.last_cpu.items()},
        }


def next_wait(interval: float, tick_cpu_s: float) -> float:
    """Seconds to the next tick: a fixed budget, so with many threads ticks come less often."""
    return min(MAX_INTERVAL_S, max(interval, tick_cpu_s / BUDGET))


def _write_snapshot(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the flow; we stop when stdin closes
    path, interval = argv[0], float(argv[1])
    snapshot = argv[2] if len(argv) > 2 else None
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), SIZE)
    table, times = views(mm)
    sampler = Sampler(table, times)
    stdin: Any = sys.stdin.buffer
    print("ready", flush=True)
    wait = interval
    started = time.monotonic()
    last_snapshot = started
    spent = 0.0
    while True:
        ready, _, _ = select.select([stdin], [], [], wait)
        if ready and not stdin.read1(4096):  # EOF: the run is over
            break
        cpu0 = time.process_time()
        try:
            sampler.tick()
        except Exception as exc:  # keep sampling; report the first problem
            print(f"sampler: {exc!r}", file=sys.stderr)
        cost = time.process_time() - cpu0
        spent += cost
        wait = next_wait(interval, cost)
        now = time.monotonic()
        if snapshot is not None and now - last_snapshot >= 1.0:
            last_snapshot = now
            data = sampler.result()
            data.update(partial_at_s=now - started, cpu_s=spent)
            try:
                _write_snapshot(snapshot, data)
            except OSError as exc:
                print(f"sampler: snapshot: {exc!r}", file=sys.stderr)
    sampler.tick()
    data = sampler.result()
    data.update(cpu_s=spent, wall_s=time.monotonic() - started)
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
    table.release()
    times.release()
    mm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
