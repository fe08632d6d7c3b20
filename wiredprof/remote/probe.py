"""What a host offers, measured: Python, cores, memory, CPU speed relative to here, RTT, bandwidth.

`probe()` runs small functions through a live `RemoteExecutor`; the same pure-Python loop
is timed here and there, so `cpu_speed_ratio` > 1 means one thread runs faster on the host.
Results are saved as `.wiredprof/hosts/NAME.json` (schema `wiredprof.probe/1`) for the planner.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import statistics
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from wiredprof.errors import ConfigError
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.speedloop import cpu_loop_times, reference_loop

__all__ = ["SCHEMA", "ProbeResult", "probe", "host_facts", "cpu_loop_seconds", "cpu_loop_times", "save_probe",
           "load_probe", "machine_key", "busy_cores", "speed_rounds", "SpeedRounds", "speed_figures"]

log = logging.getLogger(__name__)

SCHEMA = "wiredprof.probe/1"
_CPU_LOOP_N = 400_000  # default for callers; probe() calibrates its own
# The speed loop is repeated for at least MIN_SPEED_S seconds and until its rounds agree
# within TARGET_SPREAD (interquartile range over median), at most MAX_SPEED_ROUNDS rounds or
# about MAX_SPEED_S seconds.
TARGET_SPREAD = 0.04
MAX_SPEED_ROUNDS = 15
MAX_SPEED_S = 8.0
MIN_SPEED_S = 2.0
# Each round takes at least this much CPU here: several periods of a CFS CPU quota (100 ms by
# default), so a throttled side's rounds pay the quota's cost as a long stage's calls do.
ROUND_CPU_S = 0.1


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one host; what the planner reads. Times in seconds, sizes in bytes."""

    host: str
    address: str
    probed_at: str
    python: str
    python_executable: str
    cloudpickle: str | None
    cloudpickle_shipped: bool
    cores: int
    cpu_model: str
    memory_bytes: int
    cpu_speed_ratio: float
    local_loop_s: float
    remote_loop_s: float
    rtt_s: float
    rtt_p95_s: float
    bandwidth_bytes_per_s: float
    connect_s: float
    platform: str
    # The same loop's thread CPU time here and there (means), and this machine's CPU
    # seconds of it per wall second it takes on the host: unlike `cpu_speed_ratio` (wall
    # over wall) it leaves out the time the loop waited here for a CPU (a busy machine, a
    # cgroup CPU quota), which a stage does not take along to a host where it has a core.
    local_loop_cpu_s: float = 0.0
    remote_loop_cpu_s: float = 0.0
    cpu_time_ratio: float = 0.0  # 0: not measured (a probe saved by an older wiredprof)
    # The host's load: cores its other work kept busy during the probe (from /proc/stat),
    # and its 1-minute load average; whether it is this very machine (machine-id, boot id).
    busy_cores: float = 0.0
    loadavg_1m: float = 0.0
    same_machine: bool = False
    # The speed loop, repeated until its rounds agree: how many rounds, their relative
    # spread (interquartile range over median of the per-round ratio), and whether it
    # stayed above the bound (a noisy host or a noisy here).
    speed_rounds: int = 0
    ratio_spread: float = 0.0
    noisy: bool = False
    # The slowest and fastest rounds' CPU-time ratio (10th and 90th percentiles from 10 rounds
    # on): the load of a shared host changes, and the prediction's range spans them.
    ratio_low: float = 0.0
    ratio_high: float = 0.0
    # Calls the host runs side by side at full speed (a Dask cluster: its worker processes, at
    # most one per core of their machine, as the threads of one process share its GIL); 0: cores.
    slots: int = 0
    # The host's wall time per iteration of `speedloop.reference_loop` (its median round; 0: an older probe): set
    # against this machine's CPU per iteration as a stage ran (its profile's reference rounds).
    loop_iteration_s: float = 0.0
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, `schema` first."""
        data = asdict(self)
        return {"schema": data.pop("schema"), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        """Load a saved probe; raises `ValueError` for another schema or missing fields."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema: {data.get('schema')!r})")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = required - set(data)
        if missing:
            raise ValueError(f"probe is missing {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})


def machine_key() -> str:
    """A digest of this machine's machine-id and boot id ("" where there are none): equal on
    both sides only when the "host" is this same running machine (a namespace, a container)."""
    import hashlib as _hashlib

    parts = []
    for path in ("/etc/machine-id", "/proc/sys/kernel/random/boot_id"):
        try:
            with open(path) as f:
                parts.append(f.read().strip())
        except OSError:
            return ""
    # A digest: the machine-id itself is meant to stay on its machine.
    return _hashlib.sha256("/".join(parts).encode()).hexdigest()


def busy_cores(window_s: float = 0.3) -> float:
    """Cores busy with anything over `window_s` (Linux /proc/stat; 0.0 elsewhere); the caller sleeps."""
    import time as _time

    def read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields_ = [int(x) for x in f.readline().split()[1:]]
        idle = fields_[3] + (fields_[4] if len(fields_) > 4 else 0)  # idle + iowait
        return sum(fields_[:8]) - idle, sum(fields_[:8])

    try:
        busy0, total0 = read()
        _time.sleep(window_s)
        busy1, total1 = read()
        ncpu = sum(1 for line in open("/proc/stat") if line.startswith("cpu") and line[3:4].isdigit())
    except (OSError, ValueError, IndexError):
        return 0.0
    if total1 <= total0:
        return 0.0
    return ncpu * (busy1 - busy0) / (total1 - total0)


def host_facts() -> dict[str, Any]:
    """Runs on the host: cores, CPU model, memory, load (Linux /proc, with portable fallbacks)."""
    import os as _os
    import platform as _platform

    try:
        cores = len(_os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = _os.cpu_count() or 1
    model = _platform.processor() or _platform.machine()
    memory = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if not memory:
        try:
            memory = _os.sysconf("SC_PAGE_SIZE") * _os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory = 0
    try:
        loadavg = _os.getloadavg()[0]
    except (AttributeError, OSError):
        loadavg = 0.0
    return {"cores": cores, "cpu_model": model, "memory_bytes": memory, "platform": _platform.platform(),
            "loadavg_1m": loadavg, "busy_cores": busy_cores(), "machine_key": machine_key()}


def cpu_loop_seconds(n: int = _CPU_LOOP_N, rounds: int = 3) -> float:
    """Best time of `rounds` runs of one fixed pure-Python loop (the same on both sides: `speedloop`)."""
    import time as _time

    best = float("inf")
    for _ in range(rounds):
        start = _time.perf_counter()
        reference_loop(n)
        best = min(best, _time.perf_counter() - start)
    return best


def _calibrated_n(target_cpu_s: float | None = None) -> int:
    """Loop length that takes at least `target_cpu_s` of this thread's CPU here (bounded).

    Sized by CPU time, not wall time: under a CPU quota a round sized by wall would be a few
    milliseconds of CPU that fits inside one quota slice and never meets the throttling.
    """
    target = ROUND_CPU_S if target_cpu_s is None else target_cpu_s
    n = 50_000
    for _ in range(10):
        cpu = cpu_loop_times(n, 1)[0][1]
        if cpu >= target:
            break
        n = int(n * min(8.0, max(1.5, 1.2 * target / cpu))) if cpu > 0 else n * 8
    return n


@dataclass(frozen=True)
class SpeedRounds:
    """The speed loop's (wall, CPU) rounds on each side, and how well they agree."""

    remote: list[tuple[float, float]]
    local: list[tuple[float, float]]
    spread: float
    noisy: bool
    ratios: list[float]
    iterations: int = 0  # of `speedloop.reference_loop` per round (0: unknown)

    def extremes(self) -> tuple[float, float]:
        """The per-round ratio's low and high ends (10th/90th percentiles from 10 rounds on)."""
        if not self.ratios:
            return 0.0, 0.0
        if len(self.ratios) >= 10:
            q = statistics.quantiles(self.ratios, n=10, method="inclusive")
            return q[0], q[-1]
        return min(self.ratios), max(self.ratios)


def _relative_spread(values: list[float]) -> float:
    """Interquartile range over median (0 for fewer than 3 values)."""
    if len(values) < 3:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    med = statistics.median(values)
    return (q[2] - q[0]) / med if med > 0 else 0.0


def speed_rounds(
    executor: RemoteExecutor, n: int, min_rounds: int = 5, max_rounds: int = MAX_SPEED_ROUNDS,
    max_s: float = MAX_SPEED_S, target_spread: float = TARGET_SPREAD, min_s: float = MIN_SPEED_S,
) -> SpeedRounds:
    """Time the loop there and here, one round each in turn, until the per-round ratio agrees.

    The ratio is this machine's CPU seconds of the loop over its wall seconds on the host
    (the planner's CPU-time ratio). At least `min_rounds` rounds over `min_s` seconds (a
    shared host's load comes and goes), at most `max_rounds` rounds and about `max_s`
    seconds; when the spread is still above `target_spread`, the result says it is noisy.
    """
    remote: list[tuple[float, float]] = []
    local: list[tuple[float, float]] = []
    ratios: list[float] = []
    start = time.monotonic()
    deadline = start + max_s
    spread = 0.0
    while len(remote) < max_rounds:
        remote += executor.call(cpu_loop_times, n, 1)
        local += cpu_loop_times(n, 1)
        if remote[-1][0] > 0:
            ratios.append(local[-1][1] / remote[-1][0])
        spread = _relative_spread(ratios)
        now = time.monotonic()
        if len(ratios) >= min_rounds and (now - start >= min_s and spread <= target_spread or now > deadline):
            break
    return SpeedRounds(remote, local, spread, spread > target_spread, ratios, n)


def _echo(data: bytes) -> bytes:
    return data


def _noop() -> None:
    return None


def speed_figures(speed: SpeedRounds) -> dict[str, Any]:
    """The `ProbeResult` fields the speed loop's rounds give: means of the rounds, and ratios of their totals.

    Means, as the planner's input is a stage's mean per call: under a CPU quota the rounds that
    straddle a throttling pay extra CPU time (caches cold again) and the others do not, so the
    median round misses what a long call pays (measured beside an unthrottled twin: +8 to +13 %
    in the mean, none in the median). The per-round ratios give the spread and the range.
    """
    remote_loop = statistics.fmean(w for w, _ in speed.remote)
    local_loop = statistics.fmean(w for w, _ in speed.local)
    local_cpu = statistics.fmean(c for _, c in speed.local)
    low, high = speed.extremes()
    return {
        "cpu_speed_ratio": round(local_loop / remote_loop, 3) if remote_loop > 0 else 0.0,
        "local_loop_s": local_loop,
        "remote_loop_s": remote_loop,
        "local_loop_cpu_s": local_cpu,
        "remote_loop_cpu_s": statistics.fmean(c for _, c in speed.remote),
        "cpu_time_ratio": round(local_cpu / remote_loop, 3) if remote_loop > 0 else 0.0,
        "speed_rounds": len(speed.remote),
        "ratio_spread": round(speed.spread, 4),
        "noisy": speed.noisy,
        "ratio_low": round(low, 4),
        "ratio_high": round(high, 4),
        # The host's steady speed: the median round (a burst there in a probe of a second or two is
        # missed or weighed far above its share of a stage's calls).
        "loop_iteration_s": (statistics.median(w for w, _ in speed.remote) / speed.iterations
                             if speed.iterations else 0.0),
    }


def probe(
    executor: RemoteExecutor, rtt_samples: int = 30, bandwidth_bytes: int = 4 * 1024 * 1024, rounds: int = 3,
    speed: SpeedRounds | None = None,
) -> ProbeResult:
    """Measure the host behind `executor` (connecting if needed).

    `speed`: the speed loop's rounds, measured already (a cluster's slowest worker).
    """
    started = time.perf_counter()
    hello = executor.hello
    connect_s = executor.timings.ssh_s + executor.timings.worker_s or time.perf_counter() - started
    facts = executor.call(host_facts)
    if speed is None:
        speed = speed_rounds(executor, _calibrated_n(), min_rounds=max(3, rounds))
    rtts = []
    executor.call(_noop)
    for _ in range(max(3, rtt_samples)):
        t0 = time.perf_counter()
        executor.call(_noop)
        rtts.append(time.perf_counter() - t0)
    rtts.sort()
    payload = os.urandom(bandwidth_bytes)
    best = float("inf")
    for _ in range(max(1, rounds)):
        t0 = time.perf_counter()
        back = executor.call(_echo, payload)
        best = min(best, time.perf_counter() - t0)
        if len(back) != len(payload):
            raise RuntimeError("bandwidth probe: the echo came back truncated")
    return ProbeResult(
        host=executor.host,
        address=executor.spec.address,
        probed_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        python=hello.python,
        python_executable=hello.executable,
        cloudpickle=hello.cloudpickle_remote,
        cloudpickle_shipped=hello.cloudpickle_shipped,
        cores=int(facts["cores"]),
        cpu_model=str(facts["cpu_model"]),
        memory_bytes=int(facts["memory_bytes"]),
        rtt_s=statistics.median(rtts),
        rtt_p95_s=rtts[min(len(rtts) - 1, int(0.95 * len(rtts)))],
        bandwidth_bytes_per_s=2 * bandwidth_bytes / best,
        connect_s=connect_s,
        platform=str(facts["platform"]),
        busy_cores=round(float(facts.get("busy_cores", 0.0)), 3),
        loadavg_1m=float(facts.get("loadavg_1m", 0.0)),
        same_machine=bool(facts.get("machine_key")) and facts.get("machine_key") == machine_key(),
        **speed_figures(speed),
    )


def save_probe(result: ProbeResult, directory: Path, data: dict[str, Any] | None = None) -> Path:
    """Write `directory/HOST.json` (atomically): `result`, or `data` (its dict with more sections); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.host}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict() if data is None else data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load_probe(directory: Path, host: str) -> ProbeResult | None:
    """The saved probe of `host`, or None when there is none."""
    path = directory / f"{host}.json"
    if not path.is_file():
        return None
    try:
        return ProbeResult.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}; run `wiredprof hosts check {host}` again") from None
