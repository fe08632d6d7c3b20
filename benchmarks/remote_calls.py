"""wiredprof's remote engine against its peers, side by side, in one run on a loopback sshd.

    python benchmarks/remote_calls.py [--quick] [--out benchmarks/reports/remote_calls.md]

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

from wiredprof.remote import HostSpec, connect  # noqa: E402
from wiredprof.remote.bootstrap import bootstrap_command  # noqa: E402
from wiredprof.remote.localsshd import LocalSshd, start_local_sshd  # noqa: E402
from wiredprof.remote.serialize import LocalObjects, dump_call, dump_function, load_value  # noqa: E402
from wiredprof.remote.worker import HEADER, MAGIC, Kind, decode_json, encode_json  # noqa: E402

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
    system = "/usr/bin/python3"
    try:
        got = subprocess.run([system, "-c", "import sys;print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        got = ""
    return system if got == "%d.%d" % sys.version_info[:2] else sys.executable


def ssh_args(s: LocalSshd) -> list[str]:
    return ["ssh", "-i", str(s.identity), "-o", f"UserKnownHostsFile={s.known_hosts}", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-c", CIPHER, "-p", str(s.port), f"{s.user}@127.0.0.1"]


# -- the same worker, driven through an OpenSSH `ssh` subprocess ------------------------------

class SshSubprocessWorker:
    """wiredprof's worker over `ssh` pipes instead of paramiko (the bulk-transfer reference)."""

    def __init__(self, s: LocalSshd, python: str) -> None:
        self.proc = subprocess.Popen(ssh_args(s) + [bootstrap_command(python)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        assert self.proc.stdin and self.proc.stdout
        self.w, self.r = self.proc.stdin.fileno(), self.proc.stdout
        line = self.r.readline().split()
        assert line[0].decode() == MAGIC, line
        source = (ROOT / "wiredprof" / "remote" / "worker.py").read_bytes()
        self._write(b"%d\n" % len(source) + source)
        kind, _, hello = self.read()
        import cloudpickle

        from wiredprof.remote.bootstrap import _cloudpickle_sources

        ship = decode_json(hello).get("cloudpickle") != cloudpickle.__version__
        self.send(Kind.SETUP, 0, encode_json({"modules": _cloudpickle_sources() if ship else {}}))
        assert self.read()[0] == Kind.READY
        self.objects = LocalObjects()
        self.calls = 0
        self.defined: dict[int, int] = {}

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view.nbytes:
            view = view[os.write(self.w, view):]

    def send(self, kind: int, ident: int, payload: bytes | memoryview) -> None:
        view = memoryview(payload)
        self._write(HEADER.pack(kind, ident, view.nbytes))
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
        kind, ident, length = HEADER.unpack(self._exact(HEADER.size))
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

def bench(s: LocalSshd, python: str, quick: bool) -> tuple[list[Row], dict[str, str]]:
    spec = HostSpec.direct("127.0.0.1", port=s.port, user=s.user, identity=s.identity,
                           known_hosts=s.known_hosts, python=python, name="B", allow_agent=False)
    n_cold, n_warm, n_bulk = (3, 300, 2) if quick else (7, 2000, 5)
    rows: list[Row] = []
    info: dict[str, str] = {}

    # cold: connect + bootstrap + first result
    def cold_wiredprof() -> None:
        with connect(spec) as b:
            b.call(noop)

    rows.append(Row("cold first result", "wiredprof connect+call", timed(cold_wiredprof, n_cold)))
    cmd = ssh_args(s) + [f"exec {python} -c 'print(1)'"]
    rows.append(Row("cold first result", "ssh host python3 -c", timed(
        lambda: subprocess.run(cmd, capture_output=True, check=True), n_cold)))
    info["ssh command"] = shlex.join(cmd)
    execnet_spec = (f"ssh=-i {s.identity} -o UserKnownHostsFile={s.known_hosts} -o BatchMode=yes "
                    f"-c {CIPHER} -p {s.port} {s.user}@127.0.0.1//python={python}")
    try:
        import execnet

        def cold_execnet() -> None:
            gw = execnet.makegateway(execnet_spec)
            gw.remote_exec("channel.send(1)").receive()
            gw.exit()

        rows.append(Row("cold first result", "execnet makegateway", timed(cold_execnet, n_cold)))
    except ImportError:
        rows.append(Row("cold first result", "execnet", note="not installed"))
    try:
        from distributed import Client, LocalCluster

        def cold_dask() -> None:
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
                with Client(cl) as c:
                    c.submit(noop, pure=False).result()

        rows.append(Row("cold first result", "Dask LocalCluster", timed(cold_dask, max(2, n_cold // 2))))
    except ImportError:
        rows.append(Row("cold first result", "Dask", note="not installed"))

    # warm: trivial round trip
    with connect(spec) as b:
        for _ in range(50):
            b.call(noop)
        rows.append(Row("warm trivial call", "wiredprof call", timed(lambda: b.call(noop), n_warm)))
        info["paramiko cipher"] = b.session().transport.remote_cipher
        info["worker python"] = f"{b.hello.python} ({b.hello.executable})"
        info["cloudpickle on B"] = b.hello.cloudpickle_remote or "absent: shipped over the channel"
        for size in (10 * MiB, 100 * MiB):
            data = os.urandom(size)
            b.call(echo, data[:1024])
            rows.append(Row(f"{size // MiB} MiB echo", "wiredprof (paramiko)",
                            timed(lambda: b.call(echo, data), n_bulk)))
    try:
        import execnet

        gw = execnet.makegateway(execnet_spec)
        ch = gw.remote_exec("while 1:\n    x = channel.receive()\n    channel.send(x)")
        for _ in range(50):
            ch.send(1)
            ch.receive()
        rows.append(Row("warm trivial call", "execnet channel", timed(lambda: (ch.send(1), ch.receive()), n_warm)))
        gw.exit()
    except ImportError:
        rows.append(Row("warm trivial call", "execnet", note="not installed"))
    try:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
            with Client(cl) as c:
                for _ in range(20):
                    c.submit(noop, pure=False).result()
                rows.append(Row("warm trivial call", "Dask submit().result()",
                                timed(lambda: c.submit(noop, pure=False).result(), max(50, n_warm // 10))))
                for size in (10 * MiB, 100 * MiB):
                    data = os.urandom(size)
                    rows.append(Row(f"{size // MiB} MiB echo", "Dask submit",
                                    timed(lambda: c.submit(echo, data, pure=False).result(), n_bulk)))
    except ImportError:
        rows.append(Row("warm trivial call", "Dask", note="not installed"))
    try:
        from fabric import Connection

        with Connection("127.0.0.1", user=s.user, port=s.port,
                        connect_kwargs={"key_filename": str(s.identity), "look_for_keys": False,
                                        "allow_agent": False}) as conn:
            conn.client.load_host_keys(str(s.known_hosts))
            conn.run("true", hide=True)
            rows.append(Row("warm trivial call", "fabric run('true')",
                            timed(lambda: conn.run("true", hide=True), max(10, n_warm // 50))))
    except ImportError:
        rows.append(Row("warm trivial call", "fabric", note="not installed"))

    # bulk through OpenSSH's own client
    worker = SshSubprocessWorker(s, python)
    try:
        for size in (10 * MiB, 100 * MiB):
            data = os.urandom(size)
            worker.call(echo, data[:1024])
            rows.append(Row(f"{size // MiB} MiB echo", "same worker over `ssh` subprocess",
                            timed(lambda: worker.call(echo, data), n_bulk)))
    finally:
        worker.close()

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


def report(rows: list[Row], info: dict[str, str], argv: list[str]) -> str:
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    lines = [
        "# Remote calls: wiredprof vs execnet, Dask, fabric, OpenSSH",
        "",
        f"Run: `{' '.join([Path(sys.executable).name, *argv])}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Loopback sshd started by `wiredprof.remote.localsshd` ({ssh_version}); "
        f"host {platform.node()}, {os.cpu_count()} cores, shared and noisy: compare rows of one run only.",
        "",
        "Times in milliseconds; p50 is the median of the samples.",
        "",
        "| case | tool | n | p50 ms | p95 ms | min ms | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.case} | {r.tool} | {len(r.samples)} | {r.cell(0.5)} | {r.cell(0.95)} | "
                     f"{r.cell(0.0)} | {r.note} |")
    lines += ["", "## Setup", ""]
    versions = {d: version(d) for d in ("paramiko", "cloudpickle", "execnet", "fabric", "dask", "distributed")}
    lines.append(f"- Python {platform.python_version()} ({sys.executable})")
    lines += [f"- {k} {v}" for k, v in versions.items()]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append(f"- OpenSSH client cipher for `ssh` and execnet: {CIPHER} (`-c`)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports" / "remote_calls.md")
    args = parser.parse_args()
    server = start_local_sshd()
    try:
        rows, info = bench(server, remote_python(), args.quick)
    finally:
        server.stop()
    text = report(rows, info, sys.argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
