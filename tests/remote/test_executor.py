"""RemoteExecutor against a real sshd: calls, code shipping, errors, output, proxies, failures."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

from wiredprof.errors import CallTimeoutError, MissingModuleError, PickleError, WorkerLostError
from wiredprof.remote import HostSpec, connect
from wiredprof.remote.session import RemoteTraceback

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]


class StageFailed(Exception):
    """Defined here, so it travels by value and must come back as this very class."""


def add(a: int, b: int = 0) -> int:
    return a + b


def whoami() -> tuple[int, str]:
    return os.getpid(), sys.executable


COUNTER = 0


def bump() -> int:
    global COUNTER
    COUNTER += 1
    return COUNTER


@pytest.fixture
def b(spec: HostSpec) -> Any:
    with connect(spec) as executor:
        yield executor


def test_round_trip_runs_in_the_remote_worker(b: Any, python_b: str) -> None:
    assert b.call(add, 2, b=3) == 5
    pid, executable = b.call(whoami)
    assert pid == b.hello.pid != os.getpid()
    assert executable == python_b


def test_lambdas_and_closures_travel_by_value(b: Any) -> None:
    factor = 7
    offsets = {"x": 100}

    def scaled(v: int) -> int:
        return v * factor + offsets["x"]

    assert b.call(lambda v: v * 2, 21) == 42
    assert b.call(scaled, 2) == 114
    assert b.submit(scaled, 3).result() == 121


def test_helper_module_that_exists_only_on_a(b: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg_dir = tmp_path / "only_on_a"
    pkg_dir.mkdir()
    (pkg_dir / "wp_helper_mod.py").write_text(
        "import socket\n"
        "SCALE = 3\n"
        "def work(x):\n"
        "    return ('helper', x * SCALE, socket.gethostname() != '')\n"
    )
    monkeypatch.syspath_prepend(str(pkg_dir))
    helper = importlib.import_module("wp_helper_mod")
    try:
        assert b.call(helper.work, 5) == ("helper", 15, True)
        # and B really cannot import it: the worker's sys.path does not contain the directory
        assert b.call(lambda: importlib.util.find_spec("wp_helper_mod")) is None
    finally:
        sys.modules.pop("wp_helper_mod", None)


def test_exception_keeps_its_type_and_carries_the_remote_traceback(b: Any) -> None:
    def stage(x: int) -> None:
        if x > 1:
            raise StageFailed(f"bad batch {x}")

    with pytest.raises(StageFailed, match="bad batch 5") as info:
        b.call(stage, 5)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "Traceback on host B" in str(info.value.__cause__)
    assert "in stage" in info.value.remote_traceback  # type: ignore[attr-defined]
    with pytest.raises(ZeroDivisionError):
        b.call(lambda: 1 / 0)


def test_remote_output_is_streamed_with_the_host_prefix(spec: HostSpec) -> None:
    seen: list[tuple[str, str, str]] = []
    with connect(spec, output=lambda host, stream, text: seen.append((host, stream, text))) as b:

        def chatty(n: int) -> int:
            for i in range(n):
                print(f"line {i}")
            print("oops", file=sys.stderr)
            os.system("echo from-a-subprocess")  # fd 1 on B: must not corrupt the stream
            return n

        assert b.call(chatty, 3) == 3
        for _ in range(100):  # bounded: the channel's stderr is read by its own thread
            if any("from-a-subprocess" in t for _, _, t in seen):
                break
            time.sleep(0.1)
    text = "".join(t for _, s, t in seen if s == "stdout")
    assert text == "line 0\nline 1\nline 2\n"
    errors = "".join(t for _, s, t in seen if s == "stderr")
    assert "oops" in errors and "from-a-subprocess" in errors
    assert {h for h, _, _ in seen} == {"B"}


def test_default_output_prefixes_lines(b: Any, capsys: pytest.CaptureFixture[str]) -> None:
    b.call(print, "hello from B")
    assert "[B] hello from B\n" in capsys.readouterr().out


def test_unpicklable_arguments_stay_on_a_behind_a_proxy(b: Any) -> None:
    lock = threading.Lock()
    sock = socket.socket()
    calls: list[str] = []

    class Storage:  # holds a lock, so it cannot be pickled: it stays on A
        def __init__(self) -> None:
            self._guard = threading.Lock()
            self.rows: list[int] = []

        def save(self, row: int) -> int:
            with self._guard:
                self.rows.append(row)
                calls.append(threading.current_thread().name)
                return len(self.rows)

    storage = Storage()

    def core_logic(db_connectors: dict[str, Any], pipeline_name: str) -> tuple[Any, ...]:
        with db_connectors["lock"]:
            held = db_connectors["lock"].locked()
        saved = [db_connectors["storage"].save(i) for i in range(3)]
        return (
            held,
            saved,
            db_connectors["socket"].fileno() > 0,
            repr(db_connectors["storage"]),
            pipeline_name,
        )

    try:
        held, saved, fileno_ok, rep, name = b.call(
            core_logic, {"lock": lock, "storage": storage, "socket": sock}, pipeline_name="p3"
        )
    finally:
        sock.close()
    assert held is True and not lock.locked()
    assert saved == [1, 2, 3] and storage.rows == [0, 1, 2]  # the writes happened on A
    assert fileno_ok and "proxy of" in rep and name == "p3"
    assert all(n.startswith("wiredprof-proxy") for n in calls)


def test_proxy_returned_to_a_is_the_original_object(b: Any) -> None:
    lock = threading.Lock()
    assert b.call(lambda x: x, lock) is lock


def test_eight_threads_never_get_each_others_results(b: Any) -> None:
    def tagged(thread: int, i: int) -> tuple[int, int]:
        time.sleep(0.001 * (i % 3))
        return thread, i

    def worker(thread: int) -> list[tuple[int, int]]:
        return [b.call(tagged, thread, i) for i in range(40)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    for thread, got in enumerate(results):
        assert got == [(thread, i) for i in range(40)]


def test_worker_killed_mid_call_fails_at_once_then_reconnects(b: Any) -> None:
    started = time.monotonic()
    future = b.submit(time.sleep, 30)
    pid = b.hello.pid
    assert b.session().wait_started(future, 20)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerLostError, match="worker on host B"):
        future.result(timeout=20)
    assert time.monotonic() - started < 20
    assert b.call(add, 1, 1) == 2  # the next call reconnects
    assert b.hello.pid != pid and b.connects == 2


def test_timeout(b: Any) -> None:
    with pytest.raises(CallTimeoutError, match="did not finish in time"):
        b.call_with_timeout(0.5, time.sleep, 5)
    assert b.call(add, 2, 2) == 4  # the connection is still usable


def test_reconnect_after_the_link_drops(b: Any) -> None:
    first = b.hello.pid
    b.session().transport.close()  # the link drops under us
    assert b.call(add, 3, 4) == 7
    assert b.hello.pid != first


def test_stateful_closure_keeps_its_state_on_b(b: Any) -> None:
    seen: list[int] = []

    def remember(x: int) -> int:
        seen.append(x)
        return len(seen)

    assert [b.call(remember, i) for i in range(4)] == [1, 2, 3, 4]
    assert seen == []  # the state lives on B now
    assert b.call(bump) == 1 and b.call(bump) == 2
    assert b.stateful_reasons(remember) and b.stateful_reasons(bump)
    assert b.session().shipped_functions == 2  # shipped once each


def test_unpicklable_closure_variable_is_named(b: Any) -> None:
    pending = (i for i in range(3))

    def stage() -> int:
        return next(pending)

    with pytest.raises(PickleError, match="closure variable 'pending' \\(generator\\)"):
        b.call(stage)


def test_unpicklable_argument_that_cannot_be_proxied_is_named(b: Any) -> None:
    with pytest.raises(PickleError, match=r"argument 'batch' of .*\['items'\] \(generator\)"):
        b.call(lambda batch: batch, {"items": (i for i in range(2))})


def test_missing_third_party_module_names_it(b: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A "third-party" package: installed in a site-packages directory here, absent on B.
    site = tmp_path / "venv" / "site-packages"
    site.mkdir(parents=True)
    (site / "wp_thirdparty_pkg.py").write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(site))
    module = importlib.import_module("wp_thirdparty_pkg")
    try:
        with pytest.raises(MissingModuleError, match="wp_thirdparty_pkg.*pip install wp_thirdparty_pkg"):
            b.call(module.f, 1)
        assert b.call(add, 1, 2) == 3  # the worker survives
    finally:
        sys.modules.pop("wp_thirdparty_pkg", None)


def test_connect_by_name_from_the_inventory(sshd: Any, python_b: str, tmp_path: Path) -> None:
    (tmp_path / "wiredprof.toml").write_text(
        f'[hosts.big]\naddress = "{sshd.user}@127.0.0.1:{sshd.port}"\nidentity = "{sshd.identity}"\n'
        f'python = "{python_b}"\nknown_hosts = "{sshd.known_hosts}"\n'
    )
    with connect("big", project=tmp_path) as b:
        assert b.call(add, 20, 22) == 42
        assert b.host == "big"


def _sum_of(fn: Callable[[int], int], n: int) -> int:
    return sum(fn(i) for i in range(n))


def test_functions_as_arguments(b: Any) -> None:
    assert b.call(_sum_of, lambda i: i * i, 4) == 14


def test_wiredflow_core_logic_writes_to_storage_on_a(b: Any) -> None:
    pytest.importorskip("wiredflow")
    from wiredflow.main.actions.assimilation.store_staging import CustomStorageStage

    saved: list[Any] = []
    storage = CustomStorageStage(
        lambda info, **kw: saved.append(info), stage_id="custom_in_p1", use_threads=True
    )

    def core_logic(relevant_info: Any, db_connectors: dict[str, Any], pipeline_name: str) -> str:
        db_connectors["p1"].save({"from": pipeline_name, "n": relevant_info})
        return type(db_connectors["p1"]).__name__

    kind = b.call(core_logic, relevant_info=3, db_connectors={"p1": storage}, pipeline_name="p3")
    assert kind == "RemoteObjectProxy"
    assert saved == [{"from": "p3", "n": 3}]  # the storage ran on A, unchanged


def test_worker_opens_no_socket_on_b(b: Any) -> None:
    def sockets() -> list[str]:
        fds = os.listdir("/proc/self/fd")
        links = []
        for fd in fds:
            try:
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        return [link for link in links if link.startswith("socket:")]

    assert b.call(sockets) == []


def test_function_from_a_main_script(spec: HostSpec, tmp_path: Path) -> None:
    import subprocess

    script = tmp_path / "flow.py"
    script.write_text(
        "import sys\n"
        "from wiredprof.remote import HostSpec, connect\n"
        "RATE = 4\n"
        "def core_logic(x):\n"
        "    return x * RATE\n"
        "spec = HostSpec.direct(sys.argv[1], port=int(sys.argv[2]), identity=sys.argv[3],\n"
        "                       known_hosts=sys.argv[4], python=sys.argv[5], allow_agent=False)\n"
        "with connect(spec) as b:\n"
        "    print(b.call(core_logic, 10), b.call(lambda: __name__))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            spec.hostname,
            str(spec.port),
            str(spec.identity_files[0]),
            str(spec.known_hosts[0]),
            spec.python,
        ],
        capture_output=True,
        text=True,
        timeout=45,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["40", "__main__"]


def test_large_payloads_round_trip(b: Any) -> None:
    data = os.urandom(12 * 1024 * 1024)
    assert b.call(echo_with_objects, data) == (data, [1, "two", {"three": 3.0}] * 1000)

    def fails_big() -> None:
        raise StageFailed("x" * (2 * 1024 * 1024))

    with pytest.raises(StageFailed):
        b.call(fails_big)
    assert b.call(add, 1, 1) == 2  # the stream is still in step after large replies


def echo_with_objects(data: bytes) -> tuple[bytes, list[Any]]:
    return data, [1, "two", {"three": 3.0}] * 1000


def test_unpicklable_result_is_named(b: Any) -> None:
    with pytest.raises(PickleError, match="result of .*cannot be pickled back"):
        b.call(lambda: (i for i in range(3)))
    assert b.call(add, 2, 3) == 5


def test_closing_mid_call_leaves_no_worker_behind(spec: HostSpec) -> None:
    b = connect(spec)
    pid = b.hello.pid
    future = b.submit(time.sleep, 30)
    assert b.session().wait_started(future, 20)
    b.close()
    with pytest.raises(WorkerLostError):
        future.result(timeout=10)
    for _ in range(100):  # bounded: 10 s
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")


def test_a_long_call_does_not_hold_up_the_next_one(b: Any) -> None:
    # B's reader runs a call itself; a standby thread must take over reading when it runs long.
    slow = b.submit(time.sleep, 30)
    assert b.session().wait_started(slow, 20)
    assert b.call(add, 1, 2) == 3
    assert not slow.done()  # answered while the first call still ran


def test_executor_protocol(b: Any) -> None:
    from wiredprof.remote import Executor

    assert isinstance(b, Executor)
    assert b.submit(add, 1, b=2).result(timeout=30) == 3


def test_shipped_callables_are_bounded_least_recently_used_first(b: Any) -> None:
    b.session().max_functions = 3
    seen: list[int] = []

    def keeper(x: int) -> int:
        seen.append(x)
        return len(seen)

    assert b.call(keeper, 0) == 1
    for i in range(10):  # a new closure per call, as some stage wrappers do
        assert b.call(lambda i=i: i * 2) == i * 2
        assert b.call(keeper, i) == i + 2  # used every time: never dropped, state kept
    assert b.session().shipped_functions <= 3


def test_more_concurrent_calls_than_worker_threads_with_proxies(spec: HostSpec) -> None:
    class Ledger:  # holds a lock: stays on A, every call below comes back here
        def __init__(self) -> None:
            self.guard = threading.Lock()
            self.entries: list[int] = []

        def add(self, n: int) -> int:
            with self.guard:
                self.entries.append(n)
                return len(self.entries)

    ledger = Ledger()

    def record(ledger: Any, n: int) -> int:
        time.sleep(0.02)
        ledger.add(n)
        return n * n

    with connect(spec, max_threads=2) as b:
        futures = [b.submit(record, ledger, n) for n in range(12)]
        assert [f.result(timeout=30) for f in futures] == [n * n for n in range(12)]
    assert sorted(ledger.entries) == list(range(12))


def test_timeout_can_restart_the_worker(spec: HostSpec) -> None:
    with connect(spec, restart_on_timeout=True) as b:
        pid = b.hello.pid
        with pytest.raises(CallTimeoutError, match="restarted"):
            b.call_with_timeout(0.5, time.sleep, 30)
        for _ in range(100):  # bounded: 10 s for the old worker to go
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}")
        assert b.call(add, 1, 2) == 3 and b.hello.pid != pid


def test_a_failing_output_sink_does_not_end_the_session(spec: HostSpec) -> None:
    def broken(host: str, stream: str, text: str) -> None:
        raise OSError("closed terminal")

    with connect(spec, output=broken) as b:
        assert b.call(lambda: print("x") or 5) == 5
        assert b.session().alive and b.connects == 1


def test_link_drop_mid_call_fails_pending_calls_then_reconnects(b: Any) -> None:
    # Kill the sshd process serving this connection: the TCP link drops under a running call.
    worker_pid = b.hello.pid
    with open(f"/proc/{worker_pid}/stat") as f:
        session_pid = int(f.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{session_pid}/cmdline", "rb") as f:
        assert b"sshd" in f.read()
    future = b.submit(time.sleep, 30)
    assert b.session().wait_started(future, 20)
    os.kill(session_pid, signal.SIGKILL)
    with pytest.raises(WorkerLostError, match="is gone"):
        future.result(timeout=20)
    assert b.call(add, 5, 5) == 10 and b.hello.pid != worker_pid
    for _ in range(100):  # bounded: 10 s; the orphaned worker sees EOF and exits
        if not os.path.exists(f"/proc/{worker_pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{worker_pid}")


def test_proxied_objects_are_released_when_b_drops_them(b: Any) -> None:
    def touch(lock: Any) -> bool:
        with lock:
            return True

    def objects_left(n: int) -> int:
        for _ in range(100):  # bounded: a release comes just after its call's result
            if len(b.session().objects) <= n:
                break
            time.sleep(0.05)
        return len(b.session().objects)

    for _ in range(20):
        assert b.call(touch, threading.Lock())
    assert objects_left(0) == 0  # each lock was held on A only while B had its proxy

    kept = threading.Lock()
    held: list[Any] = []

    def hold(lock: Any = None) -> bool:
        if lock is not None:
            held.append(lock)  # a stateful closure keeps the proxy on B
        with held[0]:
            return bool(held[0].locked())

    assert b.call(hold, kept) is True
    assert b.call(touch, kept)  # the same object passed again while B still holds it
    assert objects_left(1) == 1
    assert b.call(hold) is True and not kept.locked()  # still reachable from B, later


def _fails_on_b(x: int) -> int:
    doubled = x * 2
    raise StageFailed(f"the batch of {doubled} is bad")  # this very line must show in the traceback


def test_remote_traceback_names_the_real_file_and_shows_the_source_line(b: Any) -> None:
    with pytest.raises(StageFailed) as info:
        b.call(_fails_on_b, 4)
    tb = info.value.remote_traceback  # type: ignore[attr-defined]
    assert f'File "{__file__}", line' in tb and "in _fails_on_b" in tb
    assert 'raise StageFailed(f"the batch of {doubled} is bad")  # this very line' in tb
    assert "<dynamic-code>" not in tb
