"""wiredprof's remote engine against its peers, side by side, in one run on a loopback sshd.

    python benchmarks/remote_calls.py [--quick] [--report [FILE]]

Needs OpenSSH's sshd and ssh; execnet, fabric, dask/distributed are optional (each missing
one is reported as "not installed"). Measures:
  cold:  connect + bootstrap + first result, vs `ssh host python3 -c`, execnet makegateway,
         Dask LocalCluster;
  warm:  trivial call p50/p95, vs an execnet channel, Dask submit().result(), fabric run;
  bulk:  10 MiB and 100 MiB echo round trip, vs the same worker driven through an OpenSSH
         `ssh` subprocess, and Dask;
  memory: client peak RSS growth during a 100 MiB call, in multiples of the payload.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import add_report_option, markdown_table  # noqa: E402
from wiredprof.remote import HostSpec, connect  # noqa: E402
from wiredprof.remote.bootstrap import bootstrap_command  # noqa: E402
from wiredprof.testing.localsshd import LocalSshd, start_local_sshd, system_python_like_ours  # noqa: E402
from wiredprof.remote.serialize import LocalObjects, dump_call, dump_function, load_value  # noqa: E402
from wiredprof.remote.worker import FRAME_MAGIC, HEADER, MAGIC, Kind, encode_json  # noqa: E402

MiB = 1024 * 1024
CIPHER = "aes128-gcm@openssh.com"


def noop() -> None:
    return None


def echo(data: bytes) -> bytes:
    return data


@dataclass
class Row:
    case: str
    tool: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def cell(self, q: float) -> str:
        if not self.samples:
            return "-"
        s = sorted(self.samples)
        value = s[min(len(s) - 1, int(q * len(s)))] if q != 0.5 else statistics.median(s)
        return f"{value * 1e3:.3f}" if value < 0.01 else f"{value * 1e3:.1f}"


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def remote_python() -> str:
    return system_python_like_ours()


def ssh_args(s: LocalSshd) -> list[str]:
    return [
        "ssh",
        "-i",
        str(s.identity),
        "-o",
        f"UserKnownHostsFile={s.known_hosts}",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-c",
        CIPHER,
        "-p",
        str(s.port),
        f"{s.user}@127.0.0.1",
    ]


# -- the same worker, driven through an OpenSSH `ssh` subprocess ------------------------------


class SshSubprocessWorker:
    """wiredprof's worker over `ssh` pipes instead of paramiko (the bulk-transfer reference)."""

    def __init__(self, s: LocalSshd, python: str) -> None:
        self.proc = subprocess.Popen(
            ssh_args(s) + [bootstrap_command(python)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdin and self.proc.stdout
        self.w, self.r = self.proc.stdin.fileno(), self.proc.stdout
        line = self.r.readline().split()
        assert line[0].decode() == MAGIC, line
        source = (ROOT / "wiredprof" / "remote" / "worker.py").read_bytes()
        import cloudpickle

        from wiredprof.remote.bootstrap import _cloudpickle_sources

        self._write(b"%d\n" % len(source) + source)
        self.send(Kind.SETUP, 0, encode_json({"cloudpickle": cloudpickle.__version__}))
        assert self.read()[0] == Kind.HELLO
        kind = self.read()[0]
        if kind == Kind.NEED_MODULES:
            self.send(Kind.MODULES, 0, encode_json(_cloudpickle_sources()))
            kind = self.read()[0]
        assert kind == Kind.READY
        self.objects = LocalObjects()
        self.calls = 0
        self.defined: dict[int, int] = {}

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view.nbytes:
            view = view[os.write(self.w, view) :]

    def send(self, kind: int, ident: int, payload: bytes | memoryview) -> None:
        view = memoryview(payload)
        self._write(HEADER.pack(FRAME_MAGIC, kind, ident, view.nbytes))
        self._write(view)

    def _exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, pos = memoryview(buf), 0
        while pos < n:
            got = self.r.readinto(view[pos:])
            if not got:
                raise EOFError
            pos += got
        return buf

    def read(self) -> tuple[int, int, bytearray]:
        _, kind, ident, length = HEADER.unpack(self._exact(HEADER.size))
        return kind, ident, self._exact(length)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        fn_id = self.defined.get(id(fn))
        if fn_id is None:
            fn_id = self.defined[id(fn)] = len(self.defined) + 1
            self.send(Kind.DEFINE, fn_id, dump_function(fn, self.objects))
        self.calls += 1
        self.send(Kind.CALL, self.calls, dump_call(fn, fn_id, args, {}, self.objects))
        while True:
            kind, _, payload = self.read()
            if kind == Kind.RESULT:
                return load_value(payload, self.objects)
            if kind == Kind.FAILURE:
                raise RuntimeError(load_value(payload, self.objects)["traceback"])

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=10)


# -- measurements -----------------------------------------------------------------------------
# The machine is shared: tools are measured in interleaved rounds (each round runs every tool
# once, in turn), so a burst of load from elsewhere hits all of them alike.


def interleave(
    cases: dict[str, Callable[[], Any]], rounds: int, per_round: int = 1
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name] += timed(fn, per_round)
    return samples


def optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def bench(s: LocalSshd, python: str, quick: bool) -> tuple[list[Row], dict[str, str]]:
    spec = HostSpec.direct(
        "127.0.0.1",
        port=s.port,
        user=s.user,
        identity=s.identity,
        known_hosts=s.known_hosts,
        python=python,
        name="B",
        allow_agent=False,
    )
    n_cold, n_warm, n_bulk = (3, 300, 2) if quick else (7, 2000, 5)
    rows: list[Row] = []
    info: dict[str, str] = {}
    execnet, distributed, fabric = optional("execnet"), optional("distributed"), optional("fabric")
    for missing in [
        n for n, m in (("execnet", execnet), ("Dask", distributed), ("fabric", fabric)) if m is None
    ]:
        rows.append(Row("all", missing, note="not installed"))
    execnet_spec = (
        f"ssh=-i {s.identity} -o UserKnownHostsFile={s.known_hosts} -o BatchMode=yes "
        f"-c {CIPHER} -p {s.port} {s.user}@127.0.0.1//python={python}"
    )
    ssh_cmd = ssh_args(s) + [f"exec {python} -c 'print(1)'"]
    info["ssh command"] = shlex.join(ssh_cmd)
    info["execnet spec"] = execnet_spec

    # cold: connect + bootstrap + first result
    def cold_wiredprof() -> None:
        with connect(spec) as b:
            b.call(noop)

    def cold_execnet() -> None:
        gw = execnet.makegateway(execnet_spec)
        gw.remote_exec("channel.send(1)").receive()
        gw.exit()

    def cold_dask() -> None:
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with distributed.Client(cluster) as client:
                client.submit(noop, pure=False).result()

    cold: dict[str, Callable[[], Any]] = {
        "wiredprof connect+call": cold_wiredprof,
        "ssh host python3 -c": lambda: subprocess.run(ssh_cmd, capture_output=True, check=True),
    }
    if execnet:
        cold["execnet makegateway"] = cold_execnet
    for name, got in interleave(cold, n_cold).items():
        rows.append(Row("cold first result", name, got))
    if distributed:
        rows.append(Row("cold first result", "Dask LocalCluster", timed(cold_dask, max(2, n_cold // 2))))

    # warm and bulk: every tool connected once, then interleaved rounds
    with contextlib.ExitStack() as stack:
        b = stack.enter_context(connect(spec))
        info["paramiko cipher"] = b.session().transport.remote_cipher
        info["worker python"] = f"{b.hello.python} ({b.hello.executable})"
        info["cloudpickle on B"] = b.hello.cloudpickle_remote or "absent: shipped over the channel"
        warm: dict[str, Callable[[], Any]] = {"wiredprof call": lambda: b.call(noop)}
        bulk: dict[str, Callable[[bytes], Any]] = {"wiredprof (paramiko)": lambda d: b.call(echo, d)}
        worker = SshSubprocessWorker(s, python)
        stack.callback(worker.close)
        bulk["same worker over `ssh` subprocess"] = lambda d: worker.call(echo, d)
        if execnet:
            gw = execnet.makegateway(execnet_spec)
            stack.callback(gw.exit)
            ch = gw.remote_exec("while 1:\n    x = channel.receive()\n    channel.send(x)")
            warm["execnet channel"] = lambda: (ch.send(1), ch.receive())
        if fabric:
            conn = stack.enter_context(
                fabric.Connection(
                    "127.0.0.1",
                    user=s.user,
                    port=s.port,
                    connect_kwargs={
                        "key_filename": str(s.identity),
                        "look_for_keys": False,
                        "allow_agent": False,
                    },
                )
            )
            conn.client.load_host_keys(str(s.known_hosts))
            conn.run("true", hide=True)
        # The floor under any paramiko worker: 30 bytes echoed by a bare loop on a channel.
        raw = b.session().transport.open_session()
        stack.callback(raw.close)
        raw.exec_command(
            f"exec {python} -c "
            + shlex.quote("import os\nwhile 1:\n d = os.read(0, 100)\n if not d: break\n os.write(1, d)")
        )
        warm["raw paramiko channel echo (floor)"] = lambda: (raw.sendall(b"x" * 30), raw.recv(100))
        for fn in warm.values():
            timed(fn, 30)
        per_round = 10
        for name, got in interleave(warm, n_warm // per_round, per_round).items():
            rows.append(Row("warm trivial call", name, got))
        if fabric:
            rows.append(
                Row(
                    "warm trivial call",
                    "fabric run('true')",
                    timed(lambda: conn.run("true", hide=True), max(10, n_warm // 50)),
                )
            )
        for size in (10 * MiB, 100 * MiB):
            data = os.urandom(size)
            for fn in bulk.values():
                fn(data[:1024])
            cases = {name: (lambda f=fn: f(data)) for name, fn in bulk.items()}
            for name, got in interleave(cases, n_bulk).items():
                rows.append(Row(f"{size // MiB} MiB echo", name, got))

    # Dask on its own: its scheduler and worker processes keep ticking, which would load
    # the machine while the SSH tools are measured.
    if distributed:
        with distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            with distributed.Client(cluster) as client:
                timed(lambda: client.submit(noop, pure=False).result(), 30)
                rows.append(
                    Row(
                        "warm trivial call",
                        "Dask submit().result() (alone)",
                        timed(lambda: client.submit(noop, pure=False).result(), max(50, n_warm // 4)),
                    )
                )
                for size in (10 * MiB, 100 * MiB):
                    data = os.urandom(size)
                    rows.append(
                        Row(
                            f"{size // MiB} MiB echo",
                            "Dask submit (alone)",
                            timed(lambda: client.submit(echo, data, pure=False).result(), n_bulk),
                        )
                    )

    info["client memory, 100 MiB call"] = memory_multiple(s, python)
    return rows, info


def memory_multiple(s: LocalSshd, python: str) -> str:
    """Peak RSS growth of a fresh client process during one 100 MiB echo, in payloads."""
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from wiredprof.remote import HostSpec, connect
def rss(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
spec = HostSpec.direct('127.0.0.1', port={s.port}, user={s.user!r}, identity={str(s.identity)!r},
                       known_hosts={str(s.known_hosts)!r}, python={python!r}, allow_agent=False)
def echo(d):
    return d
with connect(spec) as b:
    b.call(echo, b'x')
    base = rss('VmRSS')
    data = os.urandom(100 * 1024 * 1024)
    out = b.call(echo, data)
    assert out == data
    print((rss('VmHWM') - base) / len(data))
"""
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        return f"failed: {got.stderr.strip()[-200:]}"
    return f"{float(got.stdout.strip()):.2f}x the payload (peak RSS growth, payload and result included)"


def targets(rows: list[Row], info: dict[str, str]) -> list[str]:
    def p50(case: str, tool: str) -> float | None:
        for r in rows:
            if r.case == case and r.tool == tool and r.samples:
                return statistics.median(r.samples)
        return None

    checks = [
        ("warm p50 at or below execnet's", "warm trivial call", "wiredprof call", "execnet channel"),
        (
            "cold first result at or below `ssh python3 -c`",
            "cold first result",
            "wiredprof connect+call",
            "ssh host python3 -c",
        ),
        (
            "100 MiB round trip at or below the `ssh`-subprocess worker's",
            "100 MiB echo",
            "wiredprof (paramiko)",
            "same worker over `ssh` subprocess",
        ),
    ]
    out = []
    for label, case, ours, theirs in checks:
        a, b = p50(case, ours), p50(case, theirs)
        if a is None or b is None:
            out.append(f"- {label}: not measured")
            continue
        verdict = "met" if a <= b else "missed"
        out.append(f"- {label}: {verdict} ({a * 1e3:.3f} ms vs {b * 1e3:.3f} ms)")
    memory = info.get("client memory, 100 MiB call", "")
    try:
        multiple = float(memory.split("x")[0])
        out.append(
            f"- client memory during a 100 MiB call under 3x the payload: "
            f"{'met' if multiple < 3 else 'missed'} ({multiple:.2f}x)"
        )
    except ValueError:
        out.append(f"- client memory: {memory}")
    return out


def report(rows: list[Row], info: dict[str, str], argv: list[str]) -> str:
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Remote calls: wiredprof vs execnet, Dask, fabric, OpenSSH",
        "",
        f"Run: `{shlex.join(sys.orig_argv)}` (cwd: the repository) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Loopback sshd started by `wiredprof.testing.localsshd` ({ssh_version}); "
        f"host {platform.node()}, {os.cpu_count()} cores, shared and noisy (load average "
        f"{info.get('load average (1, 5, 15 min)', '?')}): compare rows of one run only.",
        "",
        "Times in milliseconds; p50 is the median of the samples. Peers are optional imports: "
        "`pip install execnet fabric dask distributed` into the venv that runs this script "
        "(here a separate one, since fabric pins invoke<3).",
        "",
        markdown_table(["case", "tool", "n", "p50 ms", "p95 ms", "min ms", "note"],
                       [[r.case, r.tool, len(r.samples), r.cell(0.5), r.cell(0.95), r.cell(0.0), r.note] for r in rows]),
    ]
    lines += ["", "## Targets (issues 4 and 10), this run", ""] + targets(rows, info)
    lines += ["", "## Setup", ""]
    versions = {
        d: version(d) for d in ("paramiko", "cloudpickle", "execnet", "fabric", "dask", "distributed")
    }
    lines.append(f"- Python {platform.python_version()} ({sys.executable})")
    lines += [f"- {k} {v}" for k, v in versions.items()]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append(f"- OpenSSH client cipher for `ssh` and execnet: {CIPHER} (`-c`)")
    lines.append("- tools measured in interleaved rounds (each round runs every tool once, in turn)")
    return "\n".join(lines) + "\n"


def _load(avg: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.1f}" for x in avg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    add_report_option(parser, ROOT / "benchmarks" / "reports" / "remote_calls.md")
    args = parser.parse_args()
    load_start = os.getloadavg()
    server = start_local_sshd()
    try:
        rows, info = bench(server, remote_python(), args.quick)
    finally:
        server.stop()
    info["load average (1, 5, 15 min)"] = f"{_load(load_start)} at the start, {_load(os.getloadavg())} at the end"
    text = report(rows, info, sys.argv)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
