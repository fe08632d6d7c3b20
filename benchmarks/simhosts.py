"""Two hosts on one machine, honestly simulated, for wiredprof's reference benchmark.

* **Host B** is a real OpenSSH ``sshd`` in its own network namespace
  (``wiredprof-b-<pid>``), reached from the root namespace over a veth pair whose two ends
  carry the addresses of a private /30 (optionally rate-limited with ``tc ... tbf``). B's
  processes are not throttled. The client side gets a throwaway ed25519 key, a known_hosts
  file and an ssh_config file, so ``ssh``/paramiko talk to B exactly as to a remote host.
* **Host A** is a cgroup (v1 or v2, detected) with a CPU quota, calibrated with a
  single-thread pure-Python probe so that A is ``target`` (4.0) times slower than B, and
  optionally a memory limit with swap off.

Everything is created and removed by this module (root only); leftovers of a crashed run
are removed by :func:`cleanup_stale`. Where the kernel or the machine does not allow it,
:class:`SimHostsUnavailable` is raised with one line saying what is missing: no number
is ever printed that was not measured.

Use::

    with SimHosts(memory_limit_bytes=300 * 2**20, bandwidth_mbit=None) as hosts:
        print(hosts.describe())                           # one paragraph for the report
        ProjectConfig(Path("wiredprof.toml")).add_host(hosts.b.host_entry("B"))
        flow = hosts.a.popen(["wiredprof", "run", "flow.py"])   # the flow runs in A
        ratio = measure_speed_ratio(hosts)                # float, with .a_s/.b_s timings
        json.dumps(hosts.info.to_dict())                  # how A and B were simulated

CLI for trying it: ``python -m benchmarks.simhosts check|up|cleanup`` (see ``--help``).
"""
from __future__ import annotations

import argparse
import atexit
import errno
import ipaddress
import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import tomlkit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wiredprof.config import HostEntry  # noqa: E402
from wiredprof.proctree import alive  # noqa: E402
from wiredprof.testing.localsshd import write_sshd_files  # noqa: E402

NETNS_PREFIX = "wiredprof-b-"
CGROUP_PREFIX = "wiredprof-a-"
TMP_PREFIX = "wiredprof-sim-"
VETH_PREFIX = "wpb"  # host side "wpb<pid>a", B side "wpb<pid>b" (<= 15 characters)
CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_SUBNET = "10.213.0.0/16"  # /30s for B are taken from here, first free one after pid
SSHD = "/usr/sbin/sshd"

#: A single-thread, pure-Python, allocation-free loop. Prints its own wall time, so the
#: interpreter's start-up is not part of the measurement.
PROBE_CODE = (
    "import sys, time\n"
    "def spin(n):\n"
    "    x = 0\n"
    "    for i in range(n):\n"
    "        x = (x * 31 + i) % 1000003\n"
    "    return x\n"
    "if __name__ == '__main__':\n"
    "    n = int(sys.argv[1])\n"
    "    t0, c0 = time.perf_counter(), time.process_time()\n"
    "    spin(n)\n"
    "    print(repr(time.perf_counter() - t0), repr(time.process_time() - c0))\n"
)


_instances = {"a": itertools.count(), "b": itertools.count()}


def _suffix(kind: str) -> str:
    """``<pid>`` for this process's first host of a kind, ``<pid>-<n>`` for later ones."""
    n = next(_instances[kind])
    if n >= 100:
        raise RuntimeError("more than 100 simulated hosts in one process")
    return f"{os.getpid()}" if n == 0 else f"{os.getpid()}-{n}"


class SimHostsUnavailable(RuntimeError):
    """The machine cannot simulate the hosts (not root, kernel refuses, sshd missing)."""


# --------------------------------------------------------------------------- helpers


def _run(cmd: Sequence[str], *, check: bool = True, timeout: float = 15.0,
         what: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a short system command, bounded; on failure raise with its stderr."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise SimHostsUnavailable(f"{cmd[0]} not found: install it (iproute2 / openssh) and retry") from exc
    except subprocess.TimeoutExpired as exc:
        raise SimHostsUnavailable(f"{shlex.join(cmd)} did not finish in {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        detail = msg[-1] if msg else f"exit {proc.returncode}"
        raise SimHostsUnavailable(f"{what or shlex.join(cmd)} failed: {detail}")
    return proc


def _owner_pid(name: str, prefix: str) -> int | None:
    """The pid encoded in a resource name such as ``wiredprof-b-1234`` (or None)."""
    if not name.startswith(prefix):
        return None
    head = name[len(prefix):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _wait_for_port(address: str, port: int, timeout_s: float,
                   alive: Callable[[], bool]) -> float:
    """Connect to ``address:port`` until it accepts (bounded); return seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    last: OSError | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise SimHostsUnavailable("sshd exited while starting")
        try:
            with socket.create_connection((address, port), timeout=1.0) as sock:
                sock.settimeout(1.0)
                banner = sock.recv(64)
                if banner.startswith(b"SSH-"):
                    return time.monotonic() - t0
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise SimHostsUnavailable(f"sshd on {address}:{port} did not accept within {timeout_s:.0f} s ({last})")


def _probe_loops(target_s: float) -> int:
    """Loop count for which :data:`PROBE_CODE` takes about ``target_s`` unthrottled here."""
    ns: dict[str, Any] = {"__name__": "probe"}
    exec(PROBE_CODE, ns)
    n = 200_000
    for _ in range(6):  # bounded: grows until one timing is long enough to scale from
        c0 = time.process_time()
        ns["spin"](n)
        dt = time.process_time() - c0
        if dt > 0.05:
            return max(10_000, int(n * target_s / dt))
        n *= 4
    return n


def _run_probe(cmd: list[str], timeout: float, **popen: Any) -> tuple[float, float]:
    """Run a probe command and return the (wall, cpu) seconds it printed."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **popen)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    wall, cpu = proc.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


# --------------------------------------------------------------------------- host B


class HostB:
    """A real sshd in its own network namespace, reached over a veth pair."""

    def __init__(self, *, port: int = 22, user: str = "root", bandwidth_mbit: float | None = None,
                 subnet: str = DEFAULT_SUBNET, sshd: str = SSHD, start_timeout_s: float = 15.0) -> None:
        self.port = port
        self.user = user
        self.bandwidth_mbit = bandwidth_mbit
        self.subnet = ipaddress.IPv4Network(subnet)
        self.sshd = sshd
        self.start_timeout_s = start_timeout_s
        suffix = _suffix("b")
        self.netns = f"{NETNS_PREFIX}{suffix}"
        self.veth_host = f"{VETH_PREFIX}{suffix}a"  # <= 15 characters: wpb + 7-digit pid + -NN + a
        self.veth_b = f"{VETH_PREFIX}{suffix}b"
        self.address = ""       # B's address (inside the netns)
        self.host_address = ""  # the root namespace's end of the veth
        self.tmpdir: Path | None = None
        self.sshd_proc: subprocess.Popen[bytes] | None = None
        self.sshd_pid: int | None = None
        self.startup_s = 0.0
        self._created_netns = False
        self._lock = threading.Lock()

    # paths of the client-side files
    @property
    def identity(self) -> Path:
        return self._tmp("id_ed25519")

    @property
    def known_hosts(self) -> Path:
        return self._tmp("known_hosts")

    @property
    def ssh_config(self) -> Path:
        return self._tmp("ssh_config")

    @property
    def log_path(self) -> Path:
        return self._tmp("sshd.log")

    @property
    def host_alias(self) -> str:
        """The ``Host`` alias written to :attr:`ssh_config`."""
        return self.netns

    def _tmp(self, name: str) -> Path:
        if self.tmpdir is None:
            raise RuntimeError("host B is not started")
        return self.tmpdir / name

    def __enter__(self) -> "HostB":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- start
    def start(self) -> "HostB":
        """Create the namespace, the veth pair, keys and sshd; return when B accepts."""
        check_root()
        if not os.access(self.sshd, os.X_OK):
            raise SimHostsUnavailable(
                f"{self.sshd} is missing: run scripts/bootstrap.sh (apt-get install -y openssh-server)")
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        net = self._free_subnet()
        hosts = list(net.hosts())
        self.host_address, self.address = str(hosts[0]), str(hosts[1])

        if Path("/run/netns", self.netns).exists():  # left by a dead process that had our pid
            _remove_netns(self.netns)
            _run(["ip", "link", "del", self.veth_host], check=False)
        _run(["ip", "netns", "add", self.netns],
             what=f"creating network namespace {self.netns} (needs root and CONFIG_NET_NS)")
        self._created_netns = True
        _run(["ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_b],
             what="creating a veth pair (needs the veth kernel module)")
        _run(["ip", "link", "set", self.veth_b, "netns", self.netns],
             what="moving the veth into the namespace")
        self._quiet_ipv6()
        _run(["ip", "addr", "add", f"{self.host_address}/30", "dev", self.veth_host])
        _run(["ip", "link", "set", self.veth_host, "up"])
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        _run(["ip", "-n", self.netns, "addr", "add", f"{self.address}/30", "dev", self.veth_b])
        _run(["ip", "-n", self.netns, "link", "set", self.veth_b, "up"])
        if self.bandwidth_mbit:
            self._limit_bandwidth(self.bandwidth_mbit)

        self._write_keys_and_config()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        log = open(self.log_path, "wb")
        try:
            self.sshd_proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, self.sshd, "-D", "-e",
                 "-f", str(self._tmp("sshd_config"))],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.sshd_pid = self.sshd_proc.pid  # `ip netns exec` execs sshd: same pid
        self.startup_s = _wait_for_port(self.address, self.port, self.start_timeout_s,
                                        lambda: self.sshd_proc is not None and self.sshd_proc.poll() is None)

    def _free_subnet(self) -> ipaddress.IPv4Network:
        """A /30 of :attr:`subnet` not used by any address of the root namespace."""
        used = _run(["ip", "-o", "addr", "show"]).stdout
        nets = list(self.subnet.subnets(new_prefix=30)) if self.subnet.prefixlen <= 30 else [self.subnet]
        start = os.getpid() % len(nets)
        for k in range(min(len(nets), 256)):  # bounded scan
            net = nets[(start + k) % len(nets)]
            if not any(f" {a}/" in used for a in net):
                return net
        raise SimHostsUnavailable(f"no free /30 in {self.subnet} for host B")

    def _quiet_ipv6(self) -> None:
        """No IPv6 on the veth: B is reached over its IPv4 test address only."""
        p = Path(f"/proc/sys/net/ipv6/conf/{self.veth_host}/disable_ipv6")
        if p.exists():
            try:
                p.write_text("1")
            except OSError:
                pass
        _run(["ip", "netns", "exec", self.netns, "sysctl", "-q", "-w",
              f"net.ipv6.conf.{self.veth_b}.disable_ipv6=1"], check=False)

    def _limit_bandwidth(self, mbit: float) -> None:
        """A token bucket on both ends of the veth (so both directions are limited)."""
        rate_bps = int(mbit * 1_000_000)
        burst = max(32 * 1024, rate_bps // 8 // 100)  # >= 10 ms worth of bytes
        tbf = ["root", "tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", "100ms"]
        _run(["tc", "qdisc", "replace", "dev", self.veth_host, *tbf], what="tc tbf on the host side")
        _run(["ip", "netns", "exec", self.netns, "tc", "qdisc", "replace", "dev", self.veth_b, *tbf],
             what="tc tbf on B's side")

    def _write_keys_and_config(self) -> None:
        """B's sshd files as the tests' throwaway sshd has them (wiredprof.testing), and an ssh_config."""
        write_sshd_files(self._tmp(""), self.address, self.port, log_level="INFO",
                         config_lines=(f"AllowUsers {self.user}",))
        self.ssh_config.write_text("\n".join([
            f"Host {self.host_alias}",
            f"    HostName {self.address}",
            f"    Port {self.port}",
            f"    User {self.user}",
            f"    IdentityFile {self.identity}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {self.known_hosts}",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "",
        ]))

    # ---------------------------------------------------------------- use
    def ssh_command(self, *remote: str, connect_timeout_s: int = 10) -> list[str]:
        """An OpenSSH client command line running ``remote`` (joined by the remote shell) on B."""
        return ["ssh", "-F", "/dev/null", "-i", str(self.identity), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout_s}",
                "-p", str(self.port), f"{self.user}@{self.address}", *remote]

    def address_spec(self) -> str:
        """``user@address:port``, the form of ``[hosts.B] address`` in wiredprof.toml."""
        return f"{self.user}@{self.address}:{self.port}"

    def host_entry(self, name: str = "B", python: str = sys.executable) -> HostEntry:
        """This host as a ``[hosts.NAME]`` of wiredprof.toml (our key and known_hosts).

        ``python`` defaults to this very interpreter: B shares the file system, so A and B
        then run the same Python build, and only the CPU quota differs.
        """
        return HostEntry(name, self.address_spec(), identity=str(self.identity), python=python,
                         known_hosts=str(self.known_hosts))

    def inventory_toml(self, name: str = "B", python: str = sys.executable) -> str:
        """:meth:`host_entry` as TOML text (for a report; a project's file: ``ProjectConfig.add_host``)."""
        return tomlkit.dumps({"hosts": {name: self.host_entry(name, python).to_table()}})

    def cpu_limits(self) -> list[str]:
        """CPU quotas that apply to B's sshd (its cgroup and every ancestor); [] = unthrottled."""
        return _cpu_limits_of(self.sshd_pid) if self.sshd_pid else []

    def netns_pids(self) -> list[int]:
        """Pids of all processes in B's namespace (sshd and its sessions)."""
        proc = _run(["ip", "netns", "pids", self.netns], check=False)
        return [int(x) for x in proc.stdout.split() if x.isdigit()]

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """Kill sshd and everything in B's namespace, delete veth, namespace, temp files. Idempotent."""
        with self._lock:
            if self.sshd_proc is not None:
                _kill_group(self.sshd_proc.pid)
                _kill_pids(self.netns_pids() if self._created_netns else [])
                try:
                    self.sshd_proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.sshd_proc.kill()
                    self.sshd_proc.wait(timeout=5)
                self.sshd_proc = None
            if self._created_netns:
                _remove_netns(self.netns)
                self._created_netns = False
            _run(["ip", "link", "del", self.veth_host], check=False)
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover - atexit never raises here
            pass


def _cpu_limits_of(pid: int) -> list[str]:
    """Every CPU quota on the cgroup path of ``pid``, as ``"path: quota/period"``."""
    limits = []
    for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines():
        _, ctrls, rel = line.split(":", 2)
        if ctrls == "" and "cpu" in _read(CGROUP_ROOT / "cgroup.controllers").split():
            mount, file = CGROUP_ROOT, "cpu.max"
        elif "cpu" in ctrls.split(","):
            found = _v1_mount("cpu")
            if found is None:
                continue
            mount, file = found, "cpu.cfs_quota_us"
        else:
            continue
        path = mount / rel.lstrip("/")
        for _ in range(64):  # bounded walk up to the mount point
            value = _read(path / file).strip()
            if value and value.split()[0] not in ("-1", "max"):
                limits.append(f"{path}: {value}")
            if path == mount or mount not in path.parents:
                break
            path = path.parent
    return limits


def _kill_group(pid: int) -> None:
    """SIGTERM the process group led by ``pid`` (sshd was started in its own session)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_pids(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``grace_s``."""
    me = os.getpid()
    pids = [p for p in pids if p != me]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if alive(p)]
        time.sleep(0.05)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _remove_netns(name: str) -> None:
    """Kill what still runs in ``name`` and delete it (bounded retries)."""
    for _ in range(3):
        proc = _run(["ip", "netns", "pids", name], check=False)
        _kill_pids([int(x) for x in proc.stdout.split() if x.isdigit()])
        _run(["ip", "netns", "del", name], check=False)
        if not Path(f"/run/netns/{name}").exists():
            return
        time.sleep(0.2)


# --------------------------------------------------------------------------- host A


def _v1_mount(controller: str) -> Path | None:
    """Where the v1 hierarchy holding ``controller`` is mounted (``cpu`` may be ``cpu,cpuacct``)."""
    for line in _read(Path("/proc/self/mounts")).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "cgroup" and controller in parts[3].split(","):
            return Path(parts[1])
    return None


def _v1_parent(controller: str) -> Path:
    """The cgroup A nests under: this process's own (so limits on this session still apply)."""
    mount = _v1_mount(controller)
    if mount is None:
        raise SimHostsUnavailable(f"cgroup v1 controller {controller} is not mounted: mount it "
                                  f"(mount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller})")
    own = mount / _own_cgroup_v1(controller).lstrip("/")
    return own if own.is_dir() else mount  # in a container the mount may be our own subtree


def cgroup_version() -> int:
    """2 if the unified hierarchy has the cpu controller, 1 if v1 cpu is mounted, else raise."""
    if "cpu" in _read(CGROUP_ROOT / "cgroup.controllers").split():
        return 2
    mount = _v1_mount("cpu")
    if mount is not None and (mount / "cpu.cfs_quota_us").exists():
        return 1
    raise SimHostsUnavailable("no cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us): "
                              "mount cgroups or run on a kernel with CONFIG_CFS_BANDWIDTH")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_cgroup_v1(controller: str) -> str:
    """This process's cgroup path in the v1 hierarchy holding ``controller``."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return path
    return "/"


class HostA:
    """A cgroup with a CPU quota (and optionally a memory limit) that plays the slow host A."""

    def __init__(self, *, quota_us: int = 25_000, period_us: int = 100_000,
                 memory_limit_bytes: int | None = None) -> None:
        self.quota_us = quota_us
        self.period_us = period_us
        self.memory_limit_bytes = memory_limit_bytes
        self.version = 0
        self.paths: dict[str, Path] = {}    # controller -> cgroup directory ("unified" on v2)
        self.parents: dict[str, Path] = {}  # where processes go back to when A is removed
        self.swap_off = False
        self.name = f"{CGROUP_PREFIX}{_suffix('a')}"
        self._lock = threading.Lock()

    def __enter__(self) -> "HostA":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- start
    def start(self) -> "HostA":
        """Create the cgroup(s) and set the quota and the memory limit."""
        check_root()
        self.version = cgroup_version()
        atexit.register(self.stop)
        try:
            if self.version == 1:
                self._start_v1()
            else:
                self._start_v2()
            self.set_quota(self.quota_us)
            if self.memory_limit_bytes:
                self._set_memory(self.memory_limit_bytes)
        except OSError as exc:
            self.stop()
            raise SimHostsUnavailable(f"the kernel refused to configure cgroup {self.name}: {exc} "
                                      "(needs root and the cpu/memory controllers)") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _start_v1(self) -> None:
        controllers = ["cpu"] + (["memory"] if self.memory_limit_bytes else [])
        for ctrl in controllers:
            parent = _v1_parent(ctrl)
            path = parent / self.name
            if path.exists():  # left by a dead process that had our pid
                _remove_cgroup(path, parent)
            try:
                path.mkdir()
            except OSError as exc:
                raise SimHostsUnavailable(
                    f"cannot create cgroup {path}: {exc.strerror} (needs root)") from exc
            self.paths[ctrl], self.parents[ctrl] = path, parent

    def _start_v2(self) -> None:
        root = CGROUP_ROOT
        want = ["cpu"] + (["memory"] if self.memory_limit_bytes else [])
        have = _read(root / "cgroup.controllers").split()
        missing = [c for c in want if c not in have]
        if missing:
            raise SimHostsUnavailable(f"cgroup v2 controllers missing: {', '.join(missing)}")
        # The root cgroup is exempt from "no internal processes": put A right under it.
        enabled = _read(root / "cgroup.subtree_control").split()
        for c in want:
            if c not in enabled:
                try:
                    (root / "cgroup.subtree_control").write_text(f"+{c}")
                except OSError as exc:
                    raise SimHostsUnavailable(
                        f"cannot enable the cgroup v2 {c} controller in {root}: {exc.strerror} (in a "
                        f"container, move its processes into a leaf cgroup first, or run on the host)"
                    ) from exc
        path = root / self.name
        if path.exists():  # left by a dead process that had our pid
            _remove_cgroup(path, root)
        try:
            path.mkdir()
        except OSError as exc:
            raise SimHostsUnavailable(f"cannot create cgroup {path}: {exc.strerror} (needs root)") from exc
        self.paths["unified"], self.parents["unified"] = path, root

    def set_quota(self, quota_us: int) -> None:
        """Set the CPU quota (microseconds of CPU per period)."""
        quota_us = max(1000, int(quota_us))
        if self.version == 1:
            p = self.paths["cpu"]
            (p / "cpu.cfs_period_us").write_text(str(self.period_us))
            (p / "cpu.cfs_quota_us").write_text(str(quota_us))
            if (p / "cpu.cfs_burst_us").exists():
                (p / "cpu.cfs_burst_us").write_text("0")
        else:
            p = self.paths["unified"]
            (p / "cpu.max").write_text(f"{quota_us} {self.period_us}")
            if (p / "cpu.max.burst").exists():
                (p / "cpu.max.burst").write_text("0")
        self.quota_us = quota_us

    def _set_memory(self, limit: int) -> None:
        if self.version == 1:
            p = self.paths["memory"]
            (p / "memory.limit_in_bytes").write_text(str(limit))
            if (p / "memory.memsw.limit_in_bytes").exists():  # memory+swap == memory: no swap
                (p / "memory.memsw.limit_in_bytes").write_text(str(limit))
                self.swap_off = True
            try:
                (p / "memory.swappiness").write_text("0")
            except OSError:
                pass
        else:
            p = self.paths["unified"]
            (p / "memory.max").write_text(str(limit))
            if (p / "memory.swap.max").exists():
                (p / "memory.swap.max").write_text("0")
                self.swap_off = True
        if not self.swap_off and _swap_total() == 0:
            self.swap_off = True  # the machine has no swap at all

    # ---------------------------------------------------------------- use
    @property
    def cpu_share(self) -> float:
        """Quota as a fraction of one core."""
        return self.quota_us / self.period_us

    @property
    def path(self) -> Path:
        """The cgroup directory holding the CPU quota."""
        return self.paths["cpu" if self.version == 1 else "unified"]

    def _procs_files(self) -> list[Path]:
        return [p / "cgroup.procs" for p in self.paths.values()]

    def add_pid(self, pid: int) -> None:
        """Move a process (all its threads) into A."""
        if not self.paths:
            raise RuntimeError("host A is not started")
        for f in self._procs_files():
            f.write_text(str(pid))

    def preexec(self) -> Callable[[], None]:
        """A ``preexec_fn`` that puts the child into A before it execs."""
        files = [str(f) for f in self._procs_files()]

        def join() -> None:
            for f in files:
                with open(f, "w") as fh:
                    fh.write(str(os.getpid()))
        return join

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen`` whose child runs inside A from its first instruction."""
        return subprocess.Popen(list(args), preexec_fn=self.preexec(), **kwargs)

    def run(self, args: Sequence[str], timeout: float | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` inside A."""
        return subprocess.run(list(args), preexec_fn=self.preexec(), timeout=timeout, **kwargs)

    def pids(self) -> list[int]:
        """Processes currently in A."""
        out: set[int] = set()
        for f in self._procs_files():
            out.update(int(x) for x in _read(f).split())
        return sorted(out)

    def cpu_stats(self) -> dict[str, int]:
        """A's CFS bandwidth counters: periods, periods throttled, time throttled (us)."""
        p = self.path / "cpu.stat"
        st = {k: int(v) for k, v in (line.split() for line in _read(p).splitlines() if line.strip())}
        throttled_us = st.get("throttled_usec", st.get("throttled_time", 0) // 1000)
        return {"nr_periods": st.get("nr_periods", 0), "nr_throttled": st.get("nr_throttled", 0),
                "throttled_us": throttled_us}

    def memory_stats(self) -> dict[str, int]:
        """Memory counters of A: limit, peak usage, times the limit was hit, OOM kills."""
        if self.version == 1 and "memory" in self.paths:
            p = self.paths["memory"]
            oom = dict(line.split() for line in _read(p / "memory.oom_control").splitlines() if line.strip())
            return {"limit_bytes": int(_read(p / "memory.limit_in_bytes") or 0),
                    "peak_bytes": int(_read(p / "memory.max_usage_in_bytes") or 0),
                    "failcnt": int(_read(p / "memory.failcnt") or 0),
                    "swap_peak_bytes": max(0, int(_read(p / "memory.memsw.max_usage_in_bytes") or 0)
                                           - int(_read(p / "memory.max_usage_in_bytes") or 0)),
                    "oom_kill": int(oom.get("oom_kill", 0))}
        if self.version == 2:
            p = self.paths["unified"]
            ev = dict(line.split() for line in _read(p / "memory.events").splitlines() if line.strip())
            limit = _read(p / "memory.max").strip()
            return {"limit_bytes": int(limit) if limit.isdigit() else 0,
                    "peak_bytes": int(_read(p / "memory.peak") or 0),
                    "failcnt": int(ev.get("max", 0)),
                    "swap_peak_bytes": int(_read(p / "memory.swap.peak") or 0),
                    "oom_kill": int(ev.get("oom_kill", 0))}
        return {}

    def memory_outcome(self, returncode: int, before: dict[str, int] | None = None) -> str:
        """What happened to a process run in A under the memory limit, in words.

        ``before`` is :meth:`memory_stats` taken before the process started (the counters
        are cumulative over A's life).
        """
        now, before = self.memory_stats(), before or {}
        oom_kills = now.get("oom_kill", 0) - before.get("oom_kill", 0)
        swapped = now.get("swap_peak_bytes", 0) > 0
        if returncode == 0:
            return "completed within the limit" + (" (swapping)" if swapped else "")
        if returncode == -signal.SIGKILL or oom_kills > 0:
            return "killed by the kernel OOM killer" + (
                " (A's oom_kill counter rose)" if oom_kills > 0 else "")
        if swapped:
            return f"swapped and failed (exit {returncode})"
        return f"failed (exit {returncode})"

    # ---------------------------------------------------------------- calibration
    def time_probe(self, loops: int, *, python: str = sys.executable, timeout: float = 180.0) -> float:
        """Wall seconds the pure-Python probe takes inside A."""
        return _run_probe([python, "-c", PROBE_CODE, str(loops)], timeout, preexec_fn=self.preexec())[0]

    def calibrate(self, *, target: float = 4.0, tolerance: float = 0.2, aim: float = 0.08, rounds: int = 5,
                  repeats: int = 3, probe_s: float = 0.5, python: str = sys.executable) -> "Calibration":
        """Adjust the quota until the probe takes ``target`` times longer in A than unthrottled.

        Each round runs the probe ``repeats`` times unthrottled (a plain child process, as B's
        processes are) and in A, interleaved. The ratio is the median wall time in A over the
        median *CPU* time of the unthrottled runs: on an idle machine that CPU time is the
        unthrottled wall time, and on a machine shared with other load it still is what B
        needs when it has a core, so the quota does not drift with the neighbours' load (the
        wall-time ratio, which does, is recorded beside it, with the contention factor).
        Rounds go on while the ratio is more than ``aim`` off the target, at most ``rounds``;
        the quota kept is the last one measured, and ``within_tolerance`` says whether its
        ratio is within ``tolerance`` of the target.
        """
        loops = _probe_loops(probe_s)
        history: list[dict[str, Any]] = []
        ratio = 0.0
        for k in range(max(1, rounds)):
            a_runs: list[float] = []
            b_runs: list[float] = []
            b_cpu: list[float] = []
            for _ in range(max(1, repeats)):
                wall, cpu = _run_probe([python, "-c", PROBE_CODE, str(loops)], 60.0)
                b_runs.append(wall)
                b_cpu.append(cpu)
                a_runs.append(self.time_probe(loops, python=python))
            ratio = statistics.median(a_runs) / statistics.median(b_cpu)
            history.append({
                "quota_us": self.quota_us, "ratio": ratio,
                "wall_ratio": statistics.median(a_runs) / statistics.median(b_runs),
                "a_s": a_runs, "unthrottled_s": b_runs, "unthrottled_cpu_s": b_cpu,
                # wall/CPU of the unthrottled probe: 1.0 on an idle machine
                "contention": statistics.median(b_runs) / max(1e-9, statistics.median(b_cpu)),
            })
            if abs(ratio - target) <= aim or k == rounds - 1:
                break
            step = min(2.0, max(0.5, ratio / target))  # A's time ~ 1/quota; damped against outliers
            self.set_quota(round(self.quota_us * step))
        return Calibration(target=target, ratio=ratio, quota_us=self.quota_us, period_us=self.period_us,
                           probe_loops=loops, rounds=history,
                           within_tolerance=abs(ratio - target) <= tolerance)

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """Move A's processes back to the parent cgroup and remove A. Idempotent."""
        with self._lock:
            for ctrl, path in list(self.paths.items()):
                _remove_cgroup(path, self.parents[ctrl])
                del self.paths[ctrl]
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover
            pass


def _swap_total() -> int:
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("SwapTotal:"):
            return int(line.split()[1])
    return 0


def _remove_cgroup(path: Path, parent: Path) -> None:
    """Move every process of ``path`` (and of the cgroups under it) to ``parent`` and rmdir it (bounded retries).

    A's per-process cgroups (``reference.PerProcessCpu``) live under it: a crashed run leaves them too.
    """
    for child in sorted(c for c in path.iterdir() if c.is_dir()) if path.is_dir() else []:
        _remove_cgroup(child, parent)
    for _ in range(20):
        if not path.exists():
            return
        for pid in _read(path / "cgroup.procs").split():
            try:
                (parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # exited meanwhile
        try:
            path.rmdir()
            return
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise
        time.sleep(0.1)
    raise RuntimeError(f"cgroup {path} could not be removed (processes keep entering it)")


@dataclass
class Calibration:
    """Result of :meth:`HostA.calibrate`."""

    target: float
    ratio: float
    quota_us: int
    period_us: int
    probe_loops: int
    rounds: list[dict[str, Any]]
    within_tolerance: bool


# --------------------------------------------------------------------------- both


class SpeedRatio(float):
    """A float, time on A / time on B (median of each side), carrying the raw timings."""

    a_s: list[float]
    b_s: list[float]
    b_cpu_s: list[float]
    method: str

    def __new__(cls, a_s: list[float], b_s: list[float], b_cpu_s: list[float], method: str) -> "SpeedRatio":
        obj = super().__new__(cls, statistics.median(a_s) / statistics.median(b_s))
        obj.a_s, obj.b_s, obj.b_cpu_s, obj.method = list(a_s), list(b_s), list(b_cpu_s), method
        return obj

    @property
    def ratio_of_fastest(self) -> float:
        """min(A) / min(B): the wall-time ratio with the least interference from other load."""
        return min(self.a_s) / min(self.b_s)

    @property
    def cpu_ratio(self) -> float:
        """Median wall time on A over median CPU time on B: what calibration aims at (see
        :meth:`HostA.calibrate`); equal to the ratio itself on an idle machine."""
        return statistics.median(self.a_s) / statistics.median(self.b_cpu_s)

    @property
    def contention(self) -> float:
        """B's wall time over its CPU time: 1.0 when nothing else competed for the CPUs."""
        return statistics.median(self.b_s) / max(1e-9, statistics.median(self.b_cpu_s))

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": float(self), "ratio_of_fastest": self.ratio_of_fastest, "cpu_ratio": self.cpu_ratio,
                "contention": self.contention, "a_s": self.a_s, "b_s": self.b_s, "b_cpu_s": self.b_cpu_s,
                "method": self.method}


@dataclass
class SimulatedHosts:
    """What the simulation is, for reports and ``--json``."""

    b_address: str
    b_port: int
    b_user: str
    identity_path: str
    known_hosts_path: str
    ssh_config_path: str
    ssh_host_alias: str
    netns: str
    veth: str
    root_address: str
    bandwidth_mbit: float | None
    b_cpu_limits: list[str]
    a_cgroup: str
    cgroup_version: int
    cpu_period_us: int
    cpu_quota_us: int
    target_ratio: float
    measured_ratio: float | None
    calibration: dict[str, Any] | None = None
    memory_limit_bytes: int | None = None
    swap_off: bool = False
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)

    def describe(self) -> str:
        """One paragraph for reports."""
        bw = (f"limited to {self.bandwidth_mbit:g} Mbit/s each way with tc tbf"
              if self.bandwidth_mbit else "without a bandwidth limit")
        if self.measured_ratio is None:
            ratio = ("was not calibrated: no speed ratio was measured")
        else:
            cal = self.calibration or {}
            rounds = cal.get("rounds") or [{}]
            ok = "" if cal.get("within_tolerance", True) else ", outside the tolerance"
            ratio = (f"was calibrated with a single-thread pure-Python probe: in A the probe took "
                     f"{self.measured_ratio:.2f}x the CPU time it needs unthrottled (target "
                     f"{self.target_ratio:.1f}x{ok}; {len(rounds)} round(s); the machine's contention, "
                     f"wall over CPU time of the unthrottled probe, was "
                     f"{rounds[-1].get('contention', 0):.2f})")
        b_cpu = ("not throttled (no CPU quota on their cgroups)" if not self.b_cpu_limits
                 else "under the CPU quota(s) " + "; ".join(self.b_cpu_limits))
        mem = ""
        if self.memory_limit_bytes:
            mem = (f" A's cgroup also limits memory to {self.memory_limit_bytes / 2**20:.0f} MiB"
                   f"{' with swap off' if self.swap_off else ' (swap could not be turned off)'}.")
        return (
            f"A and B are simulated on one machine ({self.cpus} CPUs): host B is a real OpenSSH sshd "
            f"in its own network namespace ({self.netns}) at {self.b_address}:{self.b_port}, reached "
            f"from the root namespace over a veth pair ({self.veth}, {bw}), with its processes "
            f"{b_cpu}; host A is a cgroup v{self.cgroup_version} ({self.a_cgroup}) with a CPU quota "
            f"of {self.cpu_quota_us} us per {self.cpu_period_us} us "
            f"({100 * self.cpu_quota_us / self.cpu_period_us:.1f} % of one core) that {ratio}.{mem} "
            f"Both share the same CPUs, memory, disk and Python; only the CPU quota (and memory "
            f"limit) and the network hop differ."
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["description"] = self.describe()
        return d


class SimHosts:
    """Host A (cgroup) and host B (sshd in a netns) together; a context manager.

    >>> with SimHosts(memory_limit_bytes=None) as hosts:   # doctest: +SKIP
    ...     subprocess.run(hosts.b.ssh_command("python3", "-c", "'print(1)'"))
    ...     proc = hosts.a.popen([sys.executable, "flow.py"])
    """

    def __init__(self, *, target_ratio: float = 4.0, calibrate: bool = True, quota_us: int = 25_000,
                 period_us: int = 100_000, memory_limit_bytes: int | None = None,
                 bandwidth_mbit: float | None = None, port: int = 22, user: str = "root",
                 calibration: dict[str, Any] | None = None) -> None:
        self.target_ratio = target_ratio
        self.do_calibrate = calibrate
        self.calibration_args = dict(calibration or {})
        self.a = HostA(quota_us=quota_us, period_us=period_us, memory_limit_bytes=memory_limit_bytes)
        self.b = HostB(port=port, user=user, bandwidth_mbit=bandwidth_mbit)
        self.calibration: Calibration | None = None
        self._sigterm_installed = False

    def __enter__(self) -> "SimHosts":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "SimHosts":
        """Remove leftovers of crashed runs, start B, start A and (optionally) calibrate it."""
        check_available()
        cleanup_stale()
        atexit.register(self.stop)
        self._catch_sigterm()
        try:
            self.b.start()
            self.a.start()
            if self.do_calibrate:
                self.calibration = self.a.calibrate(target=self.target_ratio, **self.calibration_args)
        except BaseException:
            self.stop()
            raise
        return self

    def _catch_sigterm(self) -> None:
        """Turn a plain SIGTERM into SystemExit, so ``with`` blocks and atexit remove the hosts."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def on_term(signum: int, frame: object) -> None:
                raise SystemExit(128 + signum)
            signal.signal(signal.SIGTERM, on_term)
            self._sigterm_installed = True

    def stop(self) -> None:
        """Remove A and B (idempotent)."""
        try:
            self.a.stop()
        finally:
            self.b.stop()
        if self._sigterm_installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._sigterm_installed = False
        try:
            atexit.unregister(self.stop)
        except Exception:  # pragma: no cover
            pass

    @property
    def info(self) -> SimulatedHosts:
        """The description of the running simulation."""
        b = self.b
        return SimulatedHosts(
            b_address=b.address, b_port=b.port, b_user=b.user, identity_path=str(b.identity),
            known_hosts_path=str(b.known_hosts), ssh_config_path=str(b.ssh_config),
            ssh_host_alias=b.host_alias, netns=b.netns, veth=f"{b.veth_host}<->{b.veth_b}",
            root_address=b.host_address, bandwidth_mbit=b.bandwidth_mbit, b_cpu_limits=b.cpu_limits(),
            a_cgroup=str(self.a.path),
            cgroup_version=self.a.version, cpu_period_us=self.a.period_us, cpu_quota_us=self.a.quota_us,
            target_ratio=self.target_ratio,
            measured_ratio=self.calibration.ratio if self.calibration else None,
            calibration=asdict(self.calibration) if self.calibration else None,
            memory_limit_bytes=self.a.memory_limit_bytes, swap_off=self.a.swap_off)

    def describe(self) -> str:
        return self.info.describe()


def measure_speed_ratio(hosts: SimHosts, *, repeats: int = 3, probe_s: float = 0.5, over: str = "ssh",
                        python: str = sys.executable, loops: int | None = None) -> SpeedRatio:
    """Time the same single-thread pure-Python probe in A (a child in A's cgroup) and on B.

    ``over="ssh"`` runs it on B through B's sshd (as wiredprof does); ``over="netns"`` through
    ``ip netns exec``. The probe times its own loop, so connection set-up is not counted.
    Returns the median ratio time_A / time_B, with the raw timings attached.
    """
    loops = loops or _probe_loops(probe_s)
    remote = [python, "-c", PROBE_CODE, str(loops)]
    if over == "ssh":
        b_cmd = hosts.b.ssh_command(shlex.join(remote))
    elif over == "netns":
        b_cmd = ["ip", "netns", "exec", hosts.b.netns, *remote]
    else:
        raise ValueError(f"over must be 'ssh' or 'netns', not {over!r}")
    a_s: list[float] = []
    b_s: list[float] = []
    b_cpu: list[float] = []
    for _ in range(max(1, repeats)):  # interleaved, so drift affects both sides alike
        wall, cpu = _run_probe(b_cmd, 120.0)
        b_s.append(wall)
        b_cpu.append(cpu)
        a_s.append(hosts.a.time_probe(loops, python=python))
    return SpeedRatio(a_s, b_s, b_cpu,
                      method=f"pure-Python loop x{loops}, median of {len(a_s)}, B over {over}")


def ssh_round_trip(hosts: SimHosts, *, repeats: int = 5) -> list[float]:
    """Wall seconds of ``ssh B true`` (a full connection each), repeated."""
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        _run(hosts.b.ssh_command("true"), what="ssh to B")
        out.append(time.perf_counter() - t0)
    return out


def tcp_connect_times(hosts: SimHosts, *, repeats: int = 20) -> list[float]:
    """Seconds for a TCP connect to B's sshd from the root namespace (one veth round trip)."""
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        with socket.create_connection((hosts.b.address, hosts.b.port), timeout=5.0):
            out.append(time.perf_counter() - t0)
    return out


def channel_round_trips(hosts: SimHosts, *, repeats: int = 10) -> list[float]:
    """Seconds per ``true`` run on one open paramiko connection (how wiredprof talks to B).

    Host keys are checked against the simulation's known_hosts file; unknown keys are refused.
    """
    import paramiko  # a wiredprof dependency; imported here so the rest needs only the stdlib

    b = hosts.b
    client = paramiko.SSHClient()
    client.load_host_keys(str(b.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(b.address, port=b.port, username=b.user, key_filename=str(b.identity),
                   allow_agent=False, look_for_keys=False, timeout=10)
    try:
        out = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            _, stdout, _ = client.exec_command("true", timeout=10)
            stdout.channel.recv_exit_status()
            out.append(time.perf_counter() - t0)
        return out
    finally:
        client.close()


# --------------------------------------------------------------------------- availability & cleanup


def check_root() -> None:
    if os.geteuid() != 0:
        raise SimHostsUnavailable(
            "simulating hosts A and B needs root (network namespaces, veth, cgroups): "
            "run as root, e.g. in CI or a container with CAP_SYS_ADMIN and CAP_NET_ADMIN")


def check_available(sshd: str = SSHD) -> None:
    """Raise :class:`SimHostsUnavailable` (one line) if something the simulation needs is missing."""
    check_root()
    for tool, pkg in (("ip", "iproute2"), ("tc", "iproute2"), ("ssh", "openssh-client")):
        if shutil.which(tool) is None:
            raise SimHostsUnavailable(f"{tool} is missing: apt-get install -y {pkg}")
    if not os.access(sshd, os.X_OK):
        raise SimHostsUnavailable(f"{sshd} is missing: run scripts/bootstrap.sh "
                                  "(apt-get install -y openssh-server)")
    cgroup_version()


def cleanup_stale() -> list[str]:
    """Remove namespaces, veths, cgroups and temp dirs of earlier runs whose process is gone."""
    removed: list[str] = []
    me = os.getpid()

    def dead(pid: int | None) -> bool:
        return pid is not None and pid != me and not alive(pid)

    netns_dir = Path("/run/netns")
    names = sorted(p.name for p in netns_dir.iterdir()) if netns_dir.is_dir() else []
    for name in names:
        if dead(_owner_pid(name, NETNS_PREFIX)):
            _remove_netns(name)
            removed.append(f"netns {name}")
    links = _run(["ip", "-o", "link", "show"], check=False).stdout
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        ifname = parts[1].strip().split("@")[0]
        ours = ifname.startswith(VETH_PREFIX) and ifname.endswith("a")
        if ours and dead(_owner_pid(ifname[:-1], VETH_PREFIX)):
            _run(["ip", "link", "del", ifname], check=False)
            removed.append(f"veth {ifname}")
    for cg in _stale_cgroup_candidates():
        if dead(_owner_pid(cg.name, CGROUP_PREFIX)):
            try:
                _remove_cgroup(cg, cg.parent)
                removed.append(f"cgroup {cg}")
            except (OSError, RuntimeError):
                pass
    for tmp in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        if dead(_owner_pid(tmp.name, TMP_PREFIX)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(f"tmpdir {tmp}")
    return removed


def _stale_cgroup_candidates() -> Iterator[Path]:
    """Directories named ``wiredprof-a-*`` at the cgroup roots and under this process's own cgroups."""
    seen: set[Path] = set()
    bases = [CGROUP_ROOT]
    for ctrl in ("cpu", "memory"):
        mount = _v1_mount(ctrl)
        if mount is not None:
            bases += [mount, mount / _own_cgroup_v1(ctrl).lstrip("/")]
    for base in bases:
        if not base.is_dir():
            continue
        for cg in base.glob(f"{CGROUP_PREFIX}*"):
            if cg.is_dir() and cg not in seen:
                seen.add(cg)
                yield cg


# --------------------------------------------------------------------------- CLI


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.simhosts",
                                 description="Simulate hosts A (cgroup) and B (sshd in a netns) "
                                             "on this machine.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="create A and B, calibrate, measure, print, hold (--hold S), remove")
    up.add_argument("--hold", type=float, default=0.0, help="seconds to keep the hosts up (bounded: <= 3600)")
    up.add_argument("--bandwidth-mbit", type=float, default=None)
    up.add_argument("--memory-mb", type=int, default=None)
    up.add_argument("--target", type=float, default=4.0)
    up.add_argument("--repeats", type=int, default=3)
    up.add_argument("--json", action="store_true")
    sub.add_parser("cleanup", help="remove leftovers of crashed runs")
    sub.add_parser("check", help="say whether this machine can simulate the hosts")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "check":
            check_available()
            print(f"ok: root, iproute2, sshd, cgroup v{cgroup_version()}")
            return 0
        if args.cmd == "cleanup":
            check_root()
            for what in cleanup_stale():
                print(f"removed {what}")
            return 0
        mem = args.memory_mb * 2**20 if args.memory_mb else None
        with SimHosts(target_ratio=args.target, memory_limit_bytes=mem, bandwidth_mbit=args.bandwidth_mbit,
                      calibration={"repeats": args.repeats}) as hosts:
            ratio = measure_speed_ratio(hosts, repeats=args.repeats)
            rtt = ssh_round_trip(hosts)
            tcp = tcp_connect_times(hosts)
            chan = channel_round_trips(hosts)
            info = hosts.info
            out = {"hosts": info.to_dict(), "speed_ratio": ratio.to_dict(),
                   "ssh_round_trip_s": rtt, "ssh_round_trip_median_s": statistics.median(rtt),
                   "tcp_connect_median_s": statistics.median(tcp),
                   "channel_round_trip_median_s": statistics.median(chan),
                   "sshd_startup_s": hosts.b.startup_s, "inventory_toml": hosts.b.inventory_toml()}
            if args.json:
                print(json.dumps(out, indent=2))
            else:
                print(info.describe())
                print(f"speed ratio over ssh: {float(ratio):.2f}x wall (A {ratio.a_s}, B {ratio.b_s}); "
                      f"A wall / B CPU {ratio.cpu_ratio:.2f}x; contention {ratio.contention:.2f}")
                ms = statistics.median(rtt) * 1000
                print(f"ssh round trip (new connection, `true`): median {ms:.0f} ms; "
                      f"TCP connect over the veth: median {statistics.median(tcp) * 1e6:.0f} us; "
                      f"`true` on one open paramiko connection: median "
                      f"{statistics.median(chan) * 1e3:.1f} ms")
                cal = hosts.calibration
                if cal is not None:
                    print(f"calibration: quota {cal.quota_us} us / {cal.period_us} us after "
                          f"{len(cal.rounds)} round(s), ratio {cal.ratio:.2f}x, "
                          f"contention {cal.rounds[-1]['contention']:.2f} (1.0 = idle machine)")
                print(f"try: ssh -F {hosts.b.ssh_config} {hosts.b.host_alias} python3 -c \"'print(1)'\"")
                print("wiredprof.toml for B:\n" + hosts.b.inventory_toml())
            if args.hold > 0:
                time.sleep(min(args.hold, 3600.0))
        return 0
    except SimHostsUnavailable as exc:
        print(f"simhosts: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
