"""WorkerSession against a real sshd: dead links, heartbeats, frame integrity, size limits."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from wiredprof.errors import FrameError, LinkSilentError, PickleError, WorkerLostError
from wiredprof.remote import HostSpec, connect
from wiredprof.remote.bootstrap import start_worker
from wiredprof.remote.transport import open_transport
from wiredprof.remote.worker import FRAME_MAGIC, HEADER, Kind

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]


def add(a: int, b: int = 0) -> int:
    return a + b


def write_raw_on_b(data: bytes) -> str:
    """Runs on B: write raw bytes into the worker's channel to A, as a corrupt peer would."""
    import gc

    server = next(o for o in gc.get_objects() if type(o).__name__ == "_Server")
    with server.send_lock:
        server._write(memoryview(data))
    return "written"


def session_pid_of(worker_pid: int) -> int:
    """The sshd process serving the worker's connection (the worker's parent)."""
    with open(f"/proc/{worker_pid}/stat") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{parent}/cmdline", "rb") as f:
        assert b"sshd" in f.read()
    return parent


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def fast(make_spec: Callable[..., HostSpec]) -> Iterator[Any]:
    with connect(make_spec(dead_after_s=2.0)) as executor:
        yield executor


def test_a_frozen_link_fails_calls_in_flight_within_dead_after(fast: Any) -> None:
    worker = fast.hello.pid
    frozen = session_pid_of(worker)
    futures = [fast.submit(time.sleep, 30) for _ in range(3)]
    assert all(fast.session().wait_started(future, 20) for future in futures)
    os.kill(frozen, signal.SIGSTOP)  # no FIN, no RST: the link just goes silent
    try:
        started = time.monotonic()
        for future in futures:
            with pytest.raises(LinkSilentError, match="dead_after_s = 2") as info:
                future.result(timeout=20)
            assert info.value.started is True  # B had acknowledged the start
        assert time.monotonic() - started <= 2.0 + 1.0
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert fast.call(add, 2, 3) == 5  # the next call builds a new session
    assert fast.hello.pid != worker
    assert gone_within(worker, 10)  # the old worker ends once its link does


def test_an_idle_link_stays_up_on_heartbeats(make_spec: Callable[..., HostSpec]) -> None:
    with connect(make_spec(dead_after_s=1.0)) as b:
        pid = b.hello.pid
        time.sleep(3.5)  # several dead_after periods with no call at all
        assert b.session().alive
        assert b.call(add, 1, 1) == 2 and b.hello.pid == pid and b.connects == 1


def test_the_worker_ends_when_host_a_goes_silent(spec: HostSpec) -> None:
    # A worker whose A sends nothing at all (no session, so no heartbeats) exits by itself.
    transport = open_transport(spec.with_(dead_after_s=1.5))
    try:
        channel, _frames, hello = start_worker(transport, "B", spec.python, dead_after_s=1.5)
        assert gone_within(hello.pid, 1.5 + 5)
        deadline = time.monotonic() + 5
        while not channel.exit_status_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        tail = channel.recv_stderr(65536).decode()
        assert "nothing from host A" in tail
    finally:
        transport.close()


def test_garbage_from_b_ends_the_session_with_a_clear_error(b_default: Any) -> None:
    b = b_default
    with pytest.raises(FrameError, match="bad frame from the host: bad magic") as info:
        b.call(write_raw_on_b, b"\x00garbage, not a frame\x00\x00")
    assert info.value.started is True
    assert b.call(add, 1, 2) == 3 and b.connects == 2


@pytest.mark.parametrize("claimed", [8 << 30, 1 << 40])
def test_an_oversized_claimed_length_is_refused_before_allocating(b_default: Any, claimed: int) -> None:
    b = b_default
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with pytest.raises(FrameError, match=f"claims {claimed} bytes, over the limit"):
        b.call(write_raw_on_b, HEADER.pack(FRAME_MAGIC, Kind.RESULT, 1, claimed))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 256 * 1024  # nothing near the claim was allocated
    assert b.call(add, 2, 2) == 4


def test_garbage_from_a_ends_the_worker_with_a_clear_error(b_default: Any) -> None:
    b = b_default
    session = b.session()
    future = b.submit(time.sleep, 30)
    assert session.wait_started(future, 20)
    session.frames.channel.sendall(b"this is not a frame at all")
    with pytest.raises(WorkerLostError, match="bad frame from host A: bad magic"):
        future.result(timeout=20)
    assert b.call(add, 3, 3) == 6


def test_frames_over_the_limit_are_refused_on_both_sides_and_the_session_lives(
    make_spec: Callable[..., HostSpec],
) -> None:
    with connect(make_spec(max_frame_bytes=1 << 20)) as b:
        with pytest.raises(PickleError, match="over the frame limit"):
            b.call(len, b"x" * (2 << 20))
        with pytest.raises(PickleError, match="too large to send back"):
            b.call(bytes, 2 << 20)
        assert b.call(len, b"x" * 1000) == 1000 and b.connects == 1


@pytest.fixture
def b_default(spec: HostSpec) -> Iterator[Any]:
    with connect(spec) as executor:
        yield executor


def test_source_lines_are_filled_in_only_where_b_showed_none() -> None:
    from wiredprof.remote.session import with_source_lines

    here = __file__
    text = (
        "Traceback (most recent call last):\n"
        f'  File "{here}", line 1, in <module>\n'
        '  File "/usr/lib/python3/somewhere_on_b.py", line 3, in f\n'
        "    b_showed_this()\n"
        "ValueError: x\n"
    )
    filled = with_source_lines(text).splitlines()
    assert filled[2] == '    """WorkerSession against a real sshd: dead links, heartbeats, frame integrity, size limits."""'
    assert filled[4] == "    b_showed_this()" and len(filled) == 6


def test_wait_started_tells_a_started_call_from_a_queued_one(spec: HostSpec) -> None:
    # Two threads on B: one reads, one runs the sleep; the second call waits in B's backlog.
    with connect(spec, max_threads=2) as b:
        session = b.session()
        running = b.submit(time.sleep, 30)
        queued = b.submit(add, 1, 2)
        assert session.wait_started(running, 20)
        assert not session.wait_started(queued, 0.5)
        assert not queued.done()
    with connect(spec) as b:
        answered = b.submit(add, 2, 2)
        assert answered.result(timeout=20) == 4
        assert b.session().wait_started(answered, 0)  # a result says it started


def sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def print_later(seconds: float) -> str:
    """Runs on B: a thread there prints after the call has returned."""
    threading.Timer(seconds, print, ("late line",)).start()
    return "returned"


def test_a_lone_call_is_read_by_its_caller_and_submitted_calls_still_get_their_answers(spec: HostSpec) -> None:
    readers: list[str] = []
    with connect(spec, output=lambda host, stream, text: readers.append(threading.current_thread().name)) as b:
        b.call(print, "hello")  # its OUTPUT frame comes before its result, on the same reader
        assert readers == [threading.current_thread().name]
        futures = [b.submit(sleep_then, 0.3, i) for i in range(4)]
        assert [b.call(add, i, 1) for i in range(50)] == [i + 1 for i in range(50)]
        assert [future.result(timeout=20) for future in futures] == list(range(4))
        readers.clear()
        b.call(print, "alone again")
        assert readers == [threading.current_thread().name] and b.connects == 1


def test_what_b_sends_between_calls_is_read_without_another_call(spec: HostSpec) -> None:
    seen: list[str] = []
    with connect(spec, output=lambda host, stream, text: seen.append(text)) as b:
        assert b.call(print_later, 0.3) == "returned"
        for _ in range(100):  # bounded: nobody calls, so the watchdog hands the frame to the receiver
            if "late line\n" in seen:
                break
            time.sleep(0.05)
        assert "late line\n" in seen


def test_a_long_call_is_acknowledged_while_it_runs(b_default: Any) -> None:
    # B runs the call in its reading thread; the standby that takes over reading acknowledges it.
    future = b_default.submit(time.sleep, 5)
    assert b_default.session().wait_started(future, 4)
    assert not future.done()
