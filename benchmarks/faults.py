"""Fault injection against real sshd sessions: what an offloaded stage does when B, the link or the stage fails.

    PYTHONPATH=$PWD python -m benchmarks.faults                  # full run (>= 100 faults), prints a summary
    PYTHONPATH=$PWD python -m benchmarks.faults --report         # ... and writes benchmarks/reports/faults.md
    PYTHONPATH=$PWD python -m benchmarks.faults --quick --json   # one fault of each kind: the suite's smoke run

Everything is real: a throwaway OpenSSH sshd on 127.0.0.1 (wiredprof.testing.localsshd),
wiredprof's own engine and offload policy, processes killed and frozen by PID. Faults:

  kill_worker       SIGKILL of the worker on B while a call runs
  kill_session      SIGKILL of the sshd process serving the connection (the TCP link drops)
  listener_restart  the sshd listener stops and the session is killed; calls go on meanwhile;
                    the listener comes back on the same port
  freeze            SIGSTOP of the sshd session process for longer than dead_after_s
                    (no FIN, no RST: a silent link)
  garbage_from_b    the worker's stream to A carries bytes that are not a frame
  oversized_from_b  a frame header claiming 8 GiB
  garbage_from_a    A's stream to the worker carries bytes that are not a frame
  worker_oom        the worker is moved into a memory cgroup (64 MiB, no swap) and the call
                    allocates past it: the kernel's OOM killer ends it (root and cgroups needed;
                    without them the fault is skipped and said so)
  stage_oserror     the stage raises FileNotFoundError / PermissionError / ConnectionResetError
  stage_exception   the stage raises ValueError

Two surfaces:
  api   calls through wiredprof's offload policy (RemoteStageFunction), under each
        on_failure policy (fail, retry, local), stage not idempotent; every execution is
        written to a ledger, so a call run twice is seen.
  flow  samples/reference_flow.py with pipeline_3.core_logic offloaded, under each policy
        (and local with idempotent = true: that core logic is a pure function); faults are
        injected while a core logic call is in flight on B.

Measured: faults injected, calls, calls still not answered dead_after + 1 s after their
fault ("hung"), wrong results (a wrong value, or an error of the wrong kind), double
executions of non-idempotent calls, and the recovery time (fault -> next call answered by B).
"""
from __future__ import annotations

import contextlib
import gc
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import markdown_table, quick_json_main  # noqa: E402
from wiredprof.offload.entries import DEFAULT_RETRIES, OffloadEntry  # noqa: E402
from wiredprof.errors import (  # noqa: E402
    CircuitOpenError,
    ConnectError,
    FrameError,
    LinkError,
    LinkSilentError,
    WorkerLostError,
)
from wiredprof.offload.runtime import OffloadRuntime, RemoteStageFunction  # noqa: E402
from wiredprof.remote.executor import RemoteExecutor  # noqa: E402
from wiredprof.testing.localsshd import LocalSshd, start_local_sshd, system_python_like_ours  # noqa: E402
from wiredprof.remote.spec import HostSpec  # noqa: E402
from wiredprof.remote.worker import FRAME_MAGIC, HEADER, Kind  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REPORT = REPO / "benchmarks" / "reports" / "faults.md"
REFERENCE_FLOW = REPO / "samples" / "reference_flow.py"
SCHEMA = "wiredprof.bench.faults/1"
POLICIES = ("fail", "retry", "local")
API_KINDS = ("kill_worker", "kill_session", "listener_restart", "freeze", "garbage_from_b", "oversized_from_b",
             "garbage_from_a", "worker_oom", "stage_oserror", "stage_exception")
FLOW_KINDS = ("kill_worker", "kill_session", "freeze", "garbage_from_a", "listener_restart")
# Between calls: faults that end the session at once (a freeze would catch the next call half sent).
FLOW_IDLE_KINDS = ("kill_worker", "kill_session", "garbage_from_a", "listener_restart")
OOM_LIMIT = 64 << 20
A_PID = os.getpid()


# -- what runs on B ---------------------------------------------------------------------------
def stage(call_id: int, x: int, mode: str, ledger: str, arg: float = 0.0) -> tuple[int, int]:
    """The offloaded stage: writes one ledger line per execution, then does what `mode` says."""
    server = None
    if mode in ("garbage", "oversized") and os.getpid() != A_PID:  # found first: the fault follows the ledger line
        server = next(o for o in gc.get_objects() if type(o).__name__ == "_Server")
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{call_id} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    if mode in ("garbage", "oversized", "oom") and os.getpid() == A_PID:
        raise RuntimeError(f"the {mode} fault ran on host A: it must only ever run on B")
    if mode == "sleep":
        time.sleep(arg)
    elif mode == "fnf":
        with open("/nonexistent/wiredprof-faults/input.csv") as f:
            f.read()
    elif mode == "perm":
        raise PermissionError(13, "Permission denied", "/etc/wiredprof-faults-secret")
    elif mode == "connreset":
        raise ConnectionResetError(104, "Connection reset by peer (the stage's own socket)")
    elif mode == "value":
        raise ValueError(f"bad input {x}")
    elif mode in ("garbage", "oversized"):
        raw = b"\x00\xffnot a frame\x00" * 4 if mode == "garbage" else HEADER.pack(FRAME_MAGIC, Kind.RESULT, 1, 8 << 30)
        assert server is not None
        with server.send_lock:
            server._write(memoryview(raw))
        time.sleep(arg)
    elif mode == "oom":
        hold = []
        for _ in range(64):  # 2 GiB at most: far past the cgroup's limit
            hold.append(bytearray(32 << 20))
        return len(hold), os.getpid()
    return x * x + 7, os.getpid()


# -- the rig ----------------------------------------------------------------------------------
class OomCgroup:
    """A memory cgroup (limit, no swap) the worker is moved into before the OOM fault."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.host: Any = None
        self.why_not = ""

    def __enter__(self) -> OomCgroup:
        try:
            from benchmarks.simhosts import HostA

            self.host = HostA(quota_us=400_000, period_us=100_000, memory_limit_bytes=self.limit).start()
        except Exception as exc:  # noqa: BLE001 - reported, and the fault is skipped
            self.host, self.why_not = None, f"{type(exc).__name__}: {exc}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.host is not None:
            self.host.stop()

    def add(self, pid: int) -> None:
        assert self.host is not None
        self.host.add_pid(pid)


@dataclass
class Fault:
    """One injected fault and what came of it."""

    kind: str
    surface: str  # "api" | "flow"
    policy: str
    outcome: str = ""  # what the faulted call gave: a result, or an exception type
    correct: bool = True  # the outcome is one this fault may give
    took_s: float = 0.0  # fault -> the faulted call answered
    hung: bool = False  # not answered within dead_after + 1 s of the fault
    recovery_s: float | None = None  # fault -> next call answered by B
    executions: int = 0  # of the faulted call
    survived: bool | None = None  # flow surface: the flow went on after it
    note: str = ""


@dataclass
class Tally:
    calls: int = 0
    wrong: list[str] = field(default_factory=list)
    double: list[str] = field(default_factory=list)


class Rig:
    """One sshd, one ledger, the spec that reaches the sshd, an OOM cgroup."""

    def __init__(self, sshd: LocalSshd, workdir: Path, dead_after_s: float, oom: OomCgroup) -> None:
        self.sshd = sshd
        self.workdir = workdir
        self.dead_after_s = dead_after_s
        self.oom = oom
        self.ledger = workdir / "ledger.txt"
        self.ledger.touch()
        self.spec = HostSpec.direct(
            sshd.address, port=sshd.port, user=sshd.user, identity=sshd.identity, known_hosts=sshd.known_hosts,
            python=system_python_like_ours(), name="B", allow_agent=False,
        ).with_(ssh_dir=workdir, system_known_hosts=(), dead_after_s=dead_after_s, connect_timeout_s=5.0)
        self._ids = iter(range(1, 10**9))
        self.tally = Tally()

    def next_id(self) -> int:
        return next(self._ids)

    def executions(self, call_id: int) -> list[int]:
        return [int(pid) for cid, pid in (line.split() for line in self.ledger.read_text().splitlines())
                if int(cid) == call_id]

    @property
    def hang_bound_s(self) -> float:
        return self.dead_after_s + 1.0


def _session_pid(worker_pid: int) -> int:
    with open(f"/proc/{worker_pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _inject(kind: str, worker: int, session_pid: int, channel: Any, sshd: LocalSshd) -> None:
    """Do the outside fault of `kind` to a session: kill, freeze, corrupt its stream, take its listener."""
    if kind == "kill_worker":
        os.kill(worker, signal.SIGKILL)
    elif kind == "kill_session":
        os.kill(session_pid, signal.SIGKILL)
    elif kind == "freeze":
        os.kill(session_pid, signal.SIGSTOP)
    elif kind == "garbage_from_a":
        with contextlib.suppress(OSError):
            channel.sendall(b"\x00\xffnot a frame either\x00" * 3)
    elif kind == "listener_restart":
        sshd.stop_listener()
        os.kill(session_pid, signal.SIGKILL)


def _wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


# -- api surface ------------------------------------------------------------------------------
class ApiTarget:
    """One offload policy's stand-in for `stage`, with its executor (a lazy RemoteExecutor)."""

    def __init__(self, rig: Rig, policy: str) -> None:
        self.rig = rig
        self.policy = policy
        self.executor = RemoteExecutor(rig.spec)
        entry = OffloadEntry("api.stage", "B", timeout_s=60.0, on_failure=policy, retries=DEFAULT_RETRIES[policy])
        self.runtime = OffloadRuntime({entry.stage: entry}, connect=lambda host: self.executor)
        self.stand_in = RemoteStageFunction(self.runtime, entry, stage)
        self.pool = ThreadPoolExecutor(2, thread_name_prefix=f"faults-{policy}")

    def close(self) -> None:
        self.runtime.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def call(self, mode: str = "ok", arg: float = 0.0, x: int | None = None) -> tuple[int, Future[Any]]:
        call_id = self.rig.next_id()
        x = call_id if x is None else x
        self.rig.tally.calls += 1
        return call_id, self.pool.submit(self.stand_in, call_id, x, mode, str(self.rig.ledger), arg)

    def good_call(self, bound_s: float = 60.0) -> tuple[bool, bool]:
        """One normal call: (answered correctly, answered by B)."""
        call_id, fut = self.call()
        try:
            value, pid = fut.result(timeout=bound_s)
        except FutureTimeout:
            self.rig.tally.wrong.append(f"{self.policy}: a normal call did not answer in {bound_s:g} s")
            return False, False
        except LinkError:
            return False, False
        except Exception as exc:  # noqa: BLE001
            self.rig.tally.wrong.append(f"{self.policy}: a normal call raised {exc!r}")
            return False, False
        if value != call_id * call_id + 7:
            self.rig.tally.wrong.append(f"{self.policy}: call {call_id} returned {value}")
            return False, False
        return True, pid != os.getpid()

    def recover(self, since: float, bound_s: float = 60.0) -> float | None:
        """Seconds from `since` until a normal call is answered by B (None past the bound)."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            ok, on_b = self.good_call()
            if ok and on_b:
                return time.monotonic() - since
            time.sleep(0.1)
        return None

    def worker_pid(self) -> int:
        return self.executor.session().hello.pid


_EXPECTED: dict[str, tuple[type[BaseException], ...]] = {
    "kill_worker": (WorkerLostError,),
    "kill_session": (WorkerLostError,),
    "listener_restart": (WorkerLostError,),
    "freeze": (LinkSilentError,),
    "garbage_from_b": (FrameError,),
    "oversized_from_b": (FrameError,),
    "garbage_from_a": (WorkerLostError,),
    "worker_oom": (WorkerLostError,),
}
_STAGE_ERRORS = {"fnf": FileNotFoundError, "perm": PermissionError, "connreset": ConnectionResetError,
                 "value": ValueError}


def api_fault(target: ApiTarget, kind: str, rep: int, log: Callable[[str], None]) -> Fault | None:
    """Inject one fault of `kind` through the offload policy; None when it cannot be injected here."""
    rig = target.rig
    fault = Fault(kind, "api", target.policy)
    if kind == "worker_oom" and rig.oom.host is None:
        return None
    target.recover(time.monotonic())  # a live session on B first
    worker = target.worker_pid()
    session = _session_pid(worker)
    if kind in ("stage_oserror", "stage_exception"):
        mode = "value" if kind == "stage_exception" else ("fnf", "perm", "connreset")[rep % 3]
        call_id, fut = target.call(mode)
        injected = time.monotonic()
        expected: tuple[type[BaseException], ...] = (_STAGE_ERRORS[mode],)
    else:
        mode, arg = {"garbage_from_b": ("garbage", 30.0), "oversized_from_b": ("oversized", 30.0),
                     "worker_oom": ("oom", 0.0)}.get(kind, ("sleep", 30.0))
        if kind == "worker_oom":
            rig.oom.add(worker)
        call_id, fut = target.call(mode, arg)
        if not _wait_for(lambda: bool(rig.executions(call_id)), 20):
            fault.note = "the call never started on B"
        injected = time.monotonic()
        expected = _EXPECTED[kind]
        if kind != "worker_oom":  # the call itself is that fault
            _inject(kind, worker, session, target.executor.session().frames.channel, rig.sshd)
    try:
        try:
            value = fut.result(timeout=rig.hang_bound_s + 30)
            fault.outcome = f"returned {value!r}"
            fault.correct = False
        except FutureTimeout:
            fault.outcome, fault.correct = "no answer", False
        except BaseException as exc:  # noqa: BLE001 - the outcome under test
            fault.outcome = type(exc).__name__
            fault.correct = isinstance(exc, expected) and (
                kind in ("stage_oserror", "stage_exception") or not isinstance(exc, CircuitOpenError))
        fault.took_s = time.monotonic() - injected
        fault.hung = fault.took_s > rig.hang_bound_s
        if kind == "freeze":
            os.kill(session, signal.SIGCONT)
        if kind == "listener_restart":
            fault.note = _while_listener_down(target, 1.5)
            restarted = time.monotonic()
            rig.sshd.start_listener()
            recovered = target.recover(restarted, bound_s=60)
            fault.recovery_s = None if recovered is None else recovered
        else:
            fault.recovery_s = target.recover(injected)
    finally:
        with contextlib.suppress(ProcessLookupError):
            if kind == "freeze":
                os.kill(session, signal.SIGCONT)
        if kind == "listener_restart" and not rig.sshd.alive():
            rig.sshd.start_listener()
    runs = rig.executions(call_id)
    fault.executions = len(runs)
    if len(runs) > 1:
        rig.tally.double.append(f"{target.policy}/{kind}: call {call_id} ran {len(runs)} times")
    if kind in ("stage_oserror", "stage_exception") and (len(runs) != 1 or runs[0] == os.getpid()):
        fault.correct = False  # the stage's own error: exactly once, on B
    if not fault.correct:
        rig.tally.wrong.append(f"{target.policy}/{kind}: {fault.outcome}")
    log(f"  api {target.policy:<6} {kind:<17} -> {fault.outcome:<22} in {fault.took_s:5.2f} s, "
        f"recovered in {fault.recovery_s if fault.recovery_s is None else round(fault.recovery_s, 2)} s"
        + (f" ({fault.note})" if fault.note else ""))
    return fault


def _while_listener_down(target: ApiTarget, seconds: float) -> str:
    """Calls while B cannot be reached: each must answer at once (policy) and never hang."""
    deadline = time.monotonic() + seconds
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    while time.monotonic() < deadline:
        t = time.monotonic()
        call_id, fut = target.call()
        try:
            value, _ = fut.result(timeout=target.rig.hang_bound_s + 30)
            ok = value == call_id * call_id + 7
            outcomes["run locally" if ok else "WRONG"] += 1
            if not ok:
                target.rig.tally.wrong.append(f"{target.policy}/listener down: call {call_id} returned {value}")
        except (ConnectError, WorkerLostError) as exc:
            outcomes[type(exc).__name__] += 1
        except BaseException as exc:  # noqa: BLE001
            outcomes[type(exc).__name__] += 1
            target.rig.tally.wrong.append(f"{target.policy}/listener down: {exc!r}")
        slowest = max(slowest, time.monotonic() - t)
        if len(target.rig.executions(call_id)) > 1:
            target.rig.tally.double.append(f"{target.policy}/listener down: call {call_id}")
        time.sleep(0.02)
    said = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
    return f"while down: {said}; slowest {slowest:.2f} s"


# -- flow surface -----------------------------------------------------------------------------
def flow_run(rig: Rig, policy: str, idempotent: bool, plan: list[tuple[str, str]], log: Callable[[str], None],
             scale: float) -> tuple[list[Fault], dict[str, Any]]:
    """The reference flow with core_logic on B; faults (kind, "idle" | "in flight") one after the other.

    "idle" strikes between two core_logic calls, "in flight" while one runs on B.
    """
    from wiredprof.runner import RunOptions, run_flow

    executor = RemoteExecutor(rig.spec)
    entry = OffloadEntry("pipeline_3.core_logic", "B", timeout_s=60.0, on_failure=policy,
                         retries=DEFAULT_RETRIES[policy], idempotent=idempotent)
    runtime = OffloadRuntime({entry.stage: entry}, connect=lambda host: executor)
    label = policy + (" idempotent" if idempotent else "")
    faults: list[Fault] = []
    done = threading.Event()
    duration = 30.0 + len(plan) * (rig.dead_after_s + 25.0)

    def completed() -> int:
        """Successful core_logic calls so far (here or on B)."""
        rec = runtime.rec
        acc = rec.stages.get(("pipeline_3", "core_logic")) if rec is not None else None
        return 0 if acc is None else acc.calls + acc.sampled - acc.errors

    def in_flight() -> bool:
        session = executor._session
        return session is not None and session.alive and bool(session._pending)

    def idle() -> bool:
        session = executor._session
        return session is not None and session.alive and not session._pending

    def on_b() -> int:
        """Successful core_logic calls answered by B (the rest of the successes ran here)."""
        return completed() - runtime.counters[entry.stage].fallbacks

    def inject() -> None:
        try:
            inject_all()
        finally:
            from wiredprof.profiling.control import current_control

            control = current_control()
            if control is not None:
                control.request_stop()  # the faults are done: end the run

    def inject_all() -> None:
        for kind, when in plan:
            if when == "in flight":
                ready = in_flight
            else:  # just after a call answered by B, before the next one starts
                answered = on_b()

                def ready() -> bool:
                    return on_b() > answered and idle()
            if not _wait_for(lambda: ready() or done.is_set(), 60, 0.005) or done.is_set():
                return
            fault = Fault(kind, "flow", label, note=when)
            before, before_b = completed(), on_b()
            session = executor._session
            assert session is not None
            worker = session.hello.pid
            sess_pid = _session_pid(worker)
            injected = time.monotonic()
            _inject(kind, worker, sess_pid, session.frames.channel, rig.sshd)
            try:
                answered = _wait_for(lambda: not session.alive, rig.hang_bound_s + 30)
                fault.took_s = time.monotonic() - injected
                fault.hung = not answered or fault.took_s > rig.hang_bound_s
                fault.outcome = f"session ended ({session._lost_cls.__name__})" if answered else "no answer"
                if kind == "listener_restart":
                    time.sleep(1.5)
                    rig.sshd.start_listener()
                progressed = _wait_for(lambda: completed() > before or done.is_set(), 60, 0.05)
                fault.survived = progressed and not done.is_set()
                if fault.survived and _wait_for(lambda: on_b() > before_b or done.is_set(), 60, 0.05):
                    fault.recovery_s = None if done.is_set() else time.monotonic() - injected
            finally:
                with contextlib.suppress(ProcessLookupError):
                    if kind == "freeze":
                        os.kill(sess_pid, signal.SIGCONT)
                if not rig.sshd.alive():
                    rig.sshd.start_listener()
            faults.append(fault)
            log(f"  flow {label:<16} {kind:<17} {when:<9} -> {fault.outcome:<36} in {fault.took_s:5.2f} s, "
                f"{'the flow went on' if fault.survived else 'the flow stopped'}, "
                f"B answered again after {fault.recovery_s if fault.recovery_s is None else round(fault.recovery_s, 2)} s")
            if not fault.survived:
                return
        time.sleep(2.0)

    injector = threading.Thread(target=inject, name="faults-injector", daemon=True)
    started = time.monotonic()
    injector.start()
    try:
        profile = run_flow(REFERENCE_FLOW, ["--scale", str(scale), "--seconds", str(duration)],
                           RunOptions(duration_s=duration, call_trees=False, offloads=runtime,
                                      flow_stdout_to_stderr=True))
    finally:
        done.set()
        injector.join(timeout=rig.hang_bound_s + 90)
        if not rig.sshd.alive():
            rig.sshd.start_listener()
    core = profile.stage("pipeline_3.core_logic")
    summary = {
        "policy": label, "status": profile.status, "wall_s": round(time.monotonic() - started, 1),
        "core_logic_calls": core.calls, "errors": core.errors, "retries": core.retries,
        "retries_after_start": core.retries_after_start, "fallbacks": core.fallbacks, "timeouts": core.timeouts,
        "link_losses": core.link_losses, "faults": len(faults),
        "survived_all": profile.status != "failed" and all(f.survived for f in faults),
    }
    rig.tally.calls += core.calls
    log(f"  flow {label:<16} ended {profile.status} after {summary['wall_s']} s: {core.calls} core_logic calls, "
        f"{core.errors} errors, {core.fallbacks} run locally, {core.link_losses} link losses")
    return faults, summary


# -- the run ----------------------------------------------------------------------------------
@contextlib.contextmanager
def rig_up(dead_after_s: float) -> Iterator[Rig]:
    sshd = start_local_sshd()
    workdir = Path(tempfile.mkdtemp(prefix="wiredprof-faults-"))
    try:
        with OomCgroup(OOM_LIMIT) as oom:
            yield Rig(sshd, workdir, dead_after_s, oom)
    finally:
        sshd.stop()
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


def run(quick: bool, log: Callable[[str], None], argv: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    dead_after = 2.0 if quick else 3.0
    reps = 1 if quick else 4
    faults: list[Fault] = []
    flows: list[dict[str, Any]] = []
    skipped: list[str] = []
    with rig_up(dead_after) as rig:
        if rig.oom.host is None:
            skipped.append(f"worker_oom: no memory cgroup here ({rig.oom.why_not})")
        policies = POLICIES
        for rep in range(reps):
            for policy in policies:
                target = ApiTarget(rig, policy)
                log(f"api surface, round {rep + 1}/{reps}, on_failure = {policy}")
                try:
                    for kind in API_KINDS:
                        if quick and policy != POLICIES[rep % 3] and kind not in ("kill_worker", "stage_oserror"):
                            continue
                        fault = api_fault(target, kind, rep, log)
                        if fault is not None:
                            faults.append(fault)
                finally:
                    target.close()
        flow_plans: list[tuple[str, bool]] = (
            [("local", True)] if quick else [("fail", False), ("retry", False), ("local", False), ("local", True)])
        for policy, idempotent in flow_plans:
            log(f"flow surface: {REFERENCE_FLOW.name}, core_logic on B, on_failure = {policy}"
                + (", idempotent" if idempotent else ""))
            if idempotent:
                plan = [(kind, "in flight") for kind in (FLOW_KINDS[:2] if quick else FLOW_KINDS)]
            else:  # between calls first (nothing was started: the flow goes on), then one in flight
                plan = [(kind, "idle") for kind in FLOW_IDLE_KINDS] + [("kill_worker", "in flight")]
            got, summary = flow_run(rig, policy, idempotent, plan, log, scale=0.01)
            faults.extend(got)
            flows.append(summary)
        tally = rig.tally
    recoveries = [f.recovery_s for f in faults if f.recovery_s is not None]
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "quick" if quick else "full",
        "argv": argv,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(terse=True),
                    "cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()]},
        "dead_after_s": dead_after,
        "faults_injected": len(faults),
        "kinds": dict(Counter(f.kind for f in faults)),
        "calls": tally.calls,
        "hung": sum(f.hung for f in faults),
        "wrong_results": len(tally.wrong),
        "double_executions": len(tally.double),
        "recovery_s": {"p50": statistics.median(recoveries) if recoveries else None,
                       "max": max(recoveries) if recoveries else None,
                       "unrecovered": sum(1 for f in faults if f.recovery_s is None)},
        "flows": flows,
        "skipped": skipped,
        "wrong": tally.wrong,
        "double": tally.double,
        "faults": [asdict(f) for f in faults],
    }
    result["targets"] = targets(result)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    local_idem = [f for f in r["flows"] if f["policy"] == "local idempotent"]
    local_plain = [f for f in r["flows"] if f["policy"] == "local"]
    out = [
        {"name": "hung past dead_after + 1 s", "target": "0", "measured": r["hung"], "met": r["hung"] == 0},
        {"name": "wrong results", "target": "0", "measured": r["wrong_results"], "met": r["wrong_results"] == 0},
        {"name": "double executions of non-idempotent calls", "target": "0", "measured": r["double_executions"],
         "met": r["double_executions"] == 0},
        {"name": "flow survives every fault with on_failure = local (idempotent stage)", "target": "yes",
         "measured": "yes" if local_idem and all(f["survived_all"] for f in local_idem) else "no",
         "met": bool(local_idem) and all(f["survived_all"] for f in local_idem)},
    ]
    if local_plain:
        f = local_plain[0]
        out.append({"name": "flow survives every fault with on_failure = local (stage NOT idempotent)",
                    "target": "not required: at most once wins", "measured": "yes" if f["survived_all"] else "no",
                    "met": True})
    return out


# -- report -----------------------------------------------------------------------------------
def render_markdown(r: dict[str, Any]) -> str:
    rec = r["recovery_s"]

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} s"

    lines = [
        "# Fault injection: offloaded stages against real sshd sessions",
        "",
        f"Run of {r['when']} ({r['mode']}, `python -m benchmarks.faults {' '.join(r['argv'])}`), "
        f"{r['seconds']:.0f} s, Python {r['machine']['python']}, {r['machine']['cpus']} CPUs shared with other work "
        f"(load average at the end {', '.join(map(str, r['machine']['load_avg']))}). `dead_after_s` = "
        f"{r['dead_after_s']:g} s for this run (the default is 15 s). Produced by `benchmarks/faults.py`; "
        "do not edit by hand.",
        "",
        "## Result",
        "",
        markdown_table(["measure", "value"], [
            ["faults injected", r["faults_injected"]],
            ["calls", r["calls"]],
            ["hung past dead_after + 1 s", r["hung"]],
            ["wrong results", r["wrong_results"]],
            ["double executions (non-idempotent)", r["double_executions"]],
            ["recovery, fault -> next call answered by B",
             f"p50 {s(rec['p50'])}, max {s(rec['max'])} ({rec['unrecovered']} not recovered)"],
        ]),
        "",
        markdown_table(["target", "wanted", "measured", "met"],
                       [[t["name"], t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in r["targets"]]),
        "",
        "## Faults by kind",
        "",
    ]
    rows: list[list[Any]] = []
    by: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = {}
    for f in r["faults"]:
        when = f["note"] if f["surface"] == "flow" else "in flight"
        by.setdefault((f["kind"], f["surface"], f["policy"], when, f["outcome"]), []).append(f)
    for (kind, surface, policy, when, outcome), fs in sorted(by.items()):
        took = [f["took_s"] for f in fs]
        recs = [f["recovery_s"] for f in fs if f["recovery_s"] is not None]
        surv = [f["survived"] for f in fs if f["survived"] is not None]
        rows.append([kind, surface, policy, when, f"{outcome} x{len(fs)}", f"max {max(took):.2f} s",
                     f"max {max(recs):.2f} s" if recs else "-", f"{sum(surv)}/{len(surv)}" if surv else "-"])
    lines.append(markdown_table(["kind", "surface", "policy", "when", "outcome", "answered in", "recovery", "survived"],
                                rows))
    lines += ["", "## The reference flow under each policy", "",
              markdown_table(["policy", "status", "core_logic calls", "errors", "run locally", "retries", "link losses",
                              "faults", "survived all"],
                             [[f["policy"], f["status"], f["core_logic_calls"], f["errors"], f["fallbacks"],
                               f["retries"] + f["retries_after_start"], f["link_losses"], f["faults"],
                               "yes" if f["survived_all"] else "no"] for f in r["flows"]])]
    lines += [
        "",
        "## Reading it",
        "",
        "- A call lost after B started it is never run again unless its stage is idempotent: with "
        "`fail`, `retry` and `local` on a non-idempotent stage the faulted call fails the stage, and "
        "wiredflow stops the whole service on any stage error, so those flows end at the fault that hits a "
        "call in flight. Between calls nothing was started: the next call reconnects and the flow goes on "
        "under every policy, except when B cannot be reached at that moment (listener down): then `fail` "
        "fails the stage at once and `retry` after its retries (what they mean), while `local` runs it here. "
        "With `idempotent = true` (the reference core logic is a pure function) `local` runs even a lost "
        "call here, and the flow goes on through every fault.",
        "- Recovery is the time from the fault to the next call answered by B. In the flow it includes "
        "waiting for pipeline_3's next cycle, and after three faults in a row without a call answered by B "
        "in between, the circuit breaker's cool-down.",
        "- `listener_restart` recovers only after the circuit breaker's cool-down (10 s, +-50 % jitter) once "
        "three connects in a row failed; meanwhile calls go straight to the policy without a connect attempt.",
        "- The stage's own exceptions (`FileNotFoundError`, `PermissionError`, `ConnectionResetError`, "
        "`ValueError`) came back with their type, ran once on B, and were never retried or run here.",
    ]
    if r["skipped"]:
        lines += ["", "Skipped: " + "; ".join(r["skipped"])]
    if r["wrong"] or r["double"]:
        lines += ["", "Problems seen:", *(f"- {w}" for w in r["wrong"] + r["double"])]
    return "\n".join(lines) + "\n"


def _summary(result: dict[str, Any], log: Callable[[str], None]) -> None:
    log(f"{result['faults_injected']} faults, {result['calls']} calls, {result['hung']} hung, "
        f"{result['wrong_results']} wrong, {result['double_executions']} double executions, "
        f"recovery p50 {result['recovery_s']['p50']} s max {result['recovery_s']['max']} s")


def main(argv: list[str] | None = None) -> int:
    return quick_json_main(argv, prog="benchmarks/faults.py", description=__doc__.split("\n")[0],
                           quick_help="one fault of most kinds, a short flow: the smoke run",
                           default_report=DEFAULT_REPORT, run=run, render=render_markdown, summary=_summary)


if __name__ == "__main__":
    sys.exit(main())
