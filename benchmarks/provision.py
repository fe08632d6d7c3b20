"""Provisioning a host B for a stage that needs numpy: cold (index, offline), warm no-op, vs by hand.

    PYTHONPATH=$PWD python -m benchmarks.provision [--quick] [--repeat N] [--report [FILE]]

Host B is a throwaway loopback sshd whose python3 is the system one (no numpy). Two B's: one
reaching its package index through its own pip configuration, one whose index is a closed
loopback port (so wiredprof sends wheels made here over SFTP). Measured in interleaved
rounds, each from an empty cache on B:
  cold index:   wiredprof's provision (venv, pip from B's index, verification by a worker);
  cold offline: the same, B's index failing first, then wheels rebuilt here and sent;
  by hand:      `ssh B 'python3 -m venv D && D/bin/python -m pip install numpy==V'` (OpenSSH);
  warm:         provision again (the environment is found: a no-op), on an open connection
                and with a fresh connection each time (what `wiredprof hosts provision` costs).
Prints the report; writes it only with --report (bare: benchmarks/reports/provision.md).
--quick uses tabulate instead of numpy.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import add_report_option, markdown_table  # noqa: E402
from wiredprof.remote.executor import RemoteExecutor  # noqa: E402
from wiredprof.testing.localsshd import LocalSshd, start_local_sshd, system_python_like_ours  # noqa: E402
from wiredprof.remote.provision import ProvisionResult, provision  # noqa: E402
from wiredprof.remote.requirements import StageNeeds, needs_of_modules  # noqa: E402
from wiredprof.remote.spec import HostSpec  # noqa: E402


@dataclass
class Row:
    case: str
    seconds: list[float] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)
    note: str = ""

    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(server: LocalSshd, python: str, ssh_dir: Path) -> HostSpec:
    return HostSpec.direct(server.address, port=server.port, user=server.user, identity=server.identity,
                           known_hosts=server.known_hosts, python=python, name="B",
                           allow_agent=False).with_(ssh_dir=ssh_dir, system_known_hosts=())


def _empty(cache: Path) -> None:
    """B's cache directory emptied: no environment and no pip cache left from an earlier round."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)


def _cold(spec: HostSpec, needs: StageNeeds, cache: Path) -> ProvisionResult:
    _empty(cache)
    with RemoteExecutor(spec) as b:
        return provision(b, needs)


def _by_hand(server: LocalSshd, python: str, pins: list[str], work: Path, cache: Path) -> float:
    target = work / "by-hand-env"
    shutil.rmtree(target, ignore_errors=True)
    _empty(cache)
    remote = f"{python} -m venv {target} && {target}/bin/python -m pip install -q --disable-pip-version-check " \
             + " ".join(shlex.quote(p) for p in pins)
    cmd = ["ssh", "-i", str(server.identity), "-p", str(server.port), "-o", f"UserKnownHostsFile={server.known_hosts}",
           "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", f"{server.user}@{server.address}", remote]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=1800, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - start


def bench(quick: bool, repeat: int, work: Path) -> tuple[list[Row], dict[str, str]]:
    module = "tabulate" if quick else "numpy"
    lib: Any = importlib.import_module(module)
    needs = needs_of_modules([module])
    python = system_python_like_ours()
    caches = {"index": work / "b-index", "offline": work / "b-offline"}
    online = start_local_sshd(environment={"XDG_CACHE_HOME": str(caches["index"])})
    offline = start_local_sshd(environment={
        "XDG_CACHE_HOME": str(caches["offline"]), "PIP_CONFIG_FILE": "/dev/null", "PIP_RETRIES": "0",
        "PIP_INDEX_URL": f"http://127.0.0.1:{_unused_port()}/simple"})
    rows = {name: Row(name) for name in ("cold, B's index", "cold, offline (wheels from A)",
                                         "by hand: ssh venv + pip install", "warm no-op, open connection",
                                         "warm no-op, new connection")}
    info: dict[str, str] = {"stage needs": " ".join(needs.pins), "B's python": python}
    try:
        specs = {"index": _spec(online, python, work / "ssh"), "offline": _spec(offline, python, work / "ssh")}
        for _ in range(repeat):
            r = _cold(specs["index"], needs, caches["index"])
            rows["cold, B's index"].seconds.append(r.seconds)
            rows["cold, B's index"].bytes_sent.append(r.bytes_sent)
            r = _cold(specs["offline"], needs, caches["offline"])
            rows["cold, offline (wheels from A)"].seconds.append(r.seconds)
            rows["cold, offline (wheels from A)"].bytes_sent.append(r.bytes_sent)
            info["offline notes"] = "; ".join(r.notes)
            by_hand = _by_hand(online, python, needs.pins, work, caches["index"])
            rows["by hand: ssh venv + pip install"].seconds.append(by_hand)
        with RemoteExecutor(specs["offline"].with_(python=r.python)) as there:
            got = there.call(_check, lib)
        info["stage result on B equals here"] = str(got == _check(lib))
        with RemoteExecutor(specs["offline"]) as b:
            for _ in range(10 if not quick else 3):
                rows["warm no-op, open connection"].seconds.append(provision(b, needs).seconds)
        for _ in range(5 if not quick else 2):
            start = time.perf_counter()
            with RemoteExecutor(specs["offline"]) as b:
                assert provision(b, needs).reused
            rows["warm no-op, new connection"].seconds.append(time.perf_counter() - start)
        env = Path(r.env_dir)
        info["environment size on B"] = f"{sum(p.stat().st_size for p in env.rglob('*') if p.is_file()) / 2**20:.0f} MiB"
    finally:
        online.stop()
        offline.stop()
    rows["cold, offline (wheels from A)"].note = "B's pip fails on the closed index first (PIP_RETRIES=0)"
    rows["by hand: ssh venv + pip install"].note = "OpenSSH client, no verification, same index as the first row"
    return list(rows.values()), info


def _check(lib: Any) -> str:
    if hasattr(lib, "arange"):
        return repr(float(lib.arange(1_000_000, dtype="float64").sum()))
    return str(lib.tabulate([[1, 2]]))


def report(rows: list[Row], info: dict[str, str]) -> str:
    by = {r.case: r for r in rows}
    hand = by["by hand: ssh venv + pip install"].median()
    lines = [
        "# Provisioning host B: cold and warm",
        "",
        f"Run: `{shlex.join(sys.orig_argv)}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"host {platform.node()}, {os.cpu_count()} cores, shared and noisy (load average "
        f"{os.getloadavg()[0]:.1f}): compare rows of this run only.",
        "",
    ]
    table = []
    for r in rows:
        sent = f"{statistics.median(r.bytes_sent):,.0f}" if r.bytes_sent else "-"
        ratio = f"{r.median() / hand:.3g}x" if hand == hand and hand > 0 else "-"
        table.append([r.case, len(r.seconds), f"{r.median():.3f}", f"{min(r.seconds):.3f}", f"{max(r.seconds):.3f}",
                      sent, ratio, r.note])
    lines.append(markdown_table(["case", "n", "median s", "min s", "max s", "bytes sent by A", "vs by hand", "note"],
                                table))
    cold = by["cold, B's index"].median()
    warm = by["warm no-op, open connection"].median()
    lines += ["", f"Warm no-op check vs cold provision from B's index: {warm / cold:.4f}x "
              f"({warm * 1e3:.0f} ms vs {cold:.1f} s).", "", "## Setup", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [f"- A: Python {platform.python_version()} ({sys.executable})",
              "- B: a loopback OpenSSH sshd (wiredprof.testing.localsshd) with the system python3; its "
              "index is this machine's pip configuration (a local mirror plus PyPI)",
              "- every cold run starts from an empty cache directory on B; rounds interleave the three cold cases",
              "- wiredprof's cold time includes `venv --without-pip` + ensurepip, pip, `pip list` in the new "
              "environment to verify the versions, and the atomic rename"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tabulate instead of numpy, fewer samples")
    parser.add_argument("--repeat", type=int, default=2, help="cold rounds (default 2)")
    add_report_option(parser, ROOT / "benchmarks" / "reports" / "provision.md")
    args = parser.parse_args()
    if not args.quick:
        try:
            importlib.import_module("numpy")
        except ImportError:
            print("benchmarks.provision: numpy is not installed here: pip install numpy (or use --quick)",
                  file=sys.stderr)
            sys.exit(2)
    with tempfile.TemporaryDirectory(prefix="wiredprof-bench-provision-") as tmp:
        work = Path(tmp)
        (work / "ssh").mkdir()
        rows, info = bench(args.quick, 1 if args.quick else args.repeat, work)
    text = report(rows, info)
    print(text)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)


if __name__ == "__main__":
    main()
