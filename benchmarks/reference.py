"""The reference case of DESIGN.md on two simulated hosts: core logic 60 s on A -> 15 s on B.

One command runs the whole story with wiredprof's own commands, on one machine:

1. simulate the hosts (``benchmarks/simhosts.py``): host B is a real sshd in its own
   network namespace, unthrottled; host A is a cgroup whose CPU quota is calibrated with a
   single-thread probe so that one thread in A runs 4.0x slower than on B;
2. size the core logic once, unthrottled, to 15 s x scale of CPU (so 60 s x scale on A) and
   pass that same ``--core-blocks`` to every run, so A and B do exactly the same work;
3. measure the raw speed ratio (the same probe in A and on B over ssh) in this run;
4. ``wiredprof analyze`` the reference sample inside A (the analyze process runs the flow);
5. ``wiredprof hosts check B`` (inside A: "here" is host A), ``wiredprof plan --json``;
6. ``wiredprof offload --stage core_logic --host B``, ``wiredprof analyze`` again inside A;
7. compare: stage and pipeline-3 cycle speed-ups against the raw ratio, the planner's
   prediction against the measured stage time, the timelines before and after.

How A is made honest (``--processes``, the default): the sample runs one process per
pipeline (wiredflow's process mode), and every process of A gets a cgroup of its own under
A with the calibrated quota, so A is a machine with as many cores as this one, each 4.0x
slower (A's total quota is the calibrated quota x the number of cores). Without that, the
pipelines would share one 25 % quota, and wiredflow's MQTT pipeline, which busy-loops,
would take half of it from the core logic (8x, not 4x). ``--threads`` runs the sample in
one process (wiredflow's threads mode) under one calibrated quota: a GIL-bound process uses
one core, so that is a 4.0x slower core too, but the core logic then shares the GIL with
the MQTT loop on A and not on B, and its speed-up is more than the raw ratio.

``--memory-variant`` adds the seed's other reason for B: A also gets a memory limit
(300 MiB x ...) below the core logic's working set (``--core-memory-mb``, 500 MiB): the
stage fails on A, the planner places it on B where it fits, and the flow succeeds there.

``--target dask`` also runs B as a Dask cluster in the same run: a real ``dask scheduler``
and one ``dask worker`` inside B's network namespace (the same unthrottled CPU), the inventory's
``[hosts.B] dask = "tcp://..."``; the same "before" profile, then ``hosts check``, ``plan``,
``offload`` and ``analyze`` against it, reported next to the SSH target's figures.

    PYTHONPATH=$PWD python -m benchmarks.reference [--scale 0.1] [--repeat 1] [--json]
        [--processes | --threads] [--memory-variant] [--quick] [--target ssh|dask] [--report PATH]

Refuses with one line (exit 2) where the kernel does not allow the simulation.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import loadavg, machine_info as _machine_info  # noqa: E402
from benchmarks._report import add_report_option, markdown_table  # noqa: E402
from benchmarks.simhosts import (  # noqa: E402
    PROBE_CODE,
    HostA,
    SimHosts,
    SimHostsUnavailable,
    _probe_loops,
    _run_probe,
    check_available,
)
from wiredprof.config import HostEntry, ProjectConfig  # noqa: E402

SCHEMA = "wiredprof.bench.reference/1"
REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "reference_flow.py"
DEFAULT_REPORT = REPO / "benchmarks" / "reports" / "reference.md"
DEFAULT_DASK_REPORT = REPO / "benchmarks" / "reports" / "reference-dask.md"  # `--target dask --report`
STAGE = "pipeline_3.core_logic"
PIPELINE = "pipeline_3"

# The reference table (DESIGN.md): core logic 60 s on A, 15 s on B.
CORE_ON_A_S = 60.0
TARGET_RATIO = 4.0
# Targets of issue 6.
TARGET_STAGE_SPEEDUP = 3.8
TARGET_SHARE_OF_RAW = 0.95
TARGET_PIPELINE_SPEEDUP = 3.3
TARGET_PREDICTION_PCT = 10.0
# Targets of issue 13: the Dask target's stage speed-up against the SSH target's, same run.
TARGET_DASK_SHARE_OF_SSH = 0.95
# Memory variant: A's limit and the core logic's working set (scaled down from 4 GB / 64 GB).
MEMORY_LIMIT_MB = 300
CORE_MEMORY_MB = 500


def log(msg: str) -> None:
    print(f"reference: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- host A, per process


class PerProcessCpu:
    """Every process of host A in a cgroup of its own under A, each with the calibrated quota.

    A is then a machine with as many cores as this one, each ``ratio`` times slower: one
    process never runs faster than the calibrated single-thread speed, whatever the others
    do, and all of A together never uses more than ``quota x cores``. Processes started with
    :meth:`preexec` go into their own cgroup before they exec; processes they fork (wiredflow's
    pipeline processes, mosquitto) are moved into cgroups of their own by a watcher thread
    within ``poll_s``. The memory limit, if any, stays on A as a whole (A's RAM is shared).
    """

    def __init__(self, a: HostA, cores: int, poll_s: float = 0.01) -> None:
        self.a = a
        self.quota_us = a.quota_us
        self.period_us = a.period_us
        self.cores = max(1, cores)
        self.poll_s = poll_s
        self.base = a.path
        self.version = a.version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.moved = 0
        self.children: set[Path] = set()

    # quota files
    def _write_quota(self, path: Path, quota_us: int) -> None:
        if self.version == 1:
            (path / "cpu.cfs_period_us").write_text(str(self.period_us))
            (path / "cpu.cfs_quota_us").write_text(str(quota_us))
        else:
            (path / "cpu.max").write_text(f"{quota_us} {self.period_us}")

    def start(self) -> "PerProcessCpu":
        if self.version == 2:  # A must be an inner node with cpu delegated to its children
            (self.base / "cgroup.subtree_control").write_text("+cpu")
        self.a.set_quota(self.quota_us * self.cores)
        self._thread = threading.Thread(target=self._watch, name="per-process-cpu", daemon=True)
        self._thread.start()
        return self

    def child(self, pid: int) -> Path:
        path = self.base / f"p{pid}"
        if not path.is_dir():
            path.mkdir()
            self._write_quota(path, self.quota_us)
        self.children.add(path)
        return path

    def preexec(self) -> Callable[[], None]:
        """A ``preexec_fn`` that puts the child into a cgroup of its own in A (and A's memory cgroup)."""
        base, quota, period, version = str(self.base), self.quota_us, self.period_us, self.version
        mem = [str(p / "cgroup.procs") for c, p in self.a.paths.items() if c == "memory"]

        def join() -> None:
            pid = os.getpid()
            path = os.path.join(base, f"p{pid}")
            os.mkdir(path)
            if version == 1:
                with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                    f.write(str(period))
                with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                    f.write(str(quota))
            else:
                with open(os.path.join(path, "cpu.max"), "w") as f:
                    f.write(f"{quota} {period}")
            for procs in [os.path.join(path, "cgroup.procs"), *mem]:
                with open(procs, "w") as f:
                    f.write(str(pid))
        return join

    def popen(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(args, preexec_fn=self.preexec(), **kw)

    def run(self, args: list[str], timeout: float | None = None, **kw: Any) -> subprocess.CompletedProcess[Any]:
        return subprocess.run(args, preexec_fn=self.preexec(), timeout=timeout, **kw)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.sweep()
            except OSError:
                pass  # a process exited while being moved

    def sweep(self) -> None:
        """Move every process that shares a cgroup with another into a cgroup of its own."""
        groups = [self.base] + sorted(p for p in self.base.glob("p*") if p.is_dir())
        for g in groups:
            try:
                pids = [int(x) for x in (g / "cgroup.procs").read_text().split()]
            except OSError:
                continue
            own = int(g.name[1:]) if g != self.base and g.name[1:].isdigit() else None
            for pid in pids:
                if pid == own:
                    continue
                try:
                    path = self.child(pid)
                    (path / "cgroup.procs").write_text(str(pid))
                    self.moved += 1
                except OSError:
                    pass

    def stop(self) -> None:
        """Stop watching, move every process back to A and remove the per-process cgroups."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for path in sorted(p for p in self.base.glob("p*") if p.is_dir()):
            for _ in range(20):
                for pid in (path / "cgroup.procs").read_text().split() if path.exists() else []:
                    try:
                        (self.base / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


class SingleQuota:
    """Threads mode: every process of A shares A's one calibrated quota (a GIL-bound process uses one core)."""

    def __init__(self, a: HostA) -> None:
        self.a = a
        self.moved = 0

    def start(self) -> "SingleQuota":
        return self

    def preexec(self) -> Callable[[], None]:
        return self.a.preexec()

    def popen(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        return self.a.popen(args, **kw)

    def run(self, args: list[str], timeout: float | None = None, **kw: Any) -> subprocess.CompletedProcess[Any]:
        return self.a.run(args, timeout=timeout, **kw)

    def stop(self) -> None:
        pass


# --------------------------------------------------------------------------- measuring


def raw_speed_ratio(hosts: SimHosts, runner: PerProcessCpu | SingleQuota, repeats: int = 3,
                    probe_s: float = 0.5) -> dict[str, Any]:
    """The simhosts probe in A (as A's processes run) and on B over ssh, interleaved; median ratio."""
    loops = _probe_loops(probe_s)
    cmd = [sys.executable, "-c", PROBE_CODE, str(loops)]
    b_cmd = hosts.b.ssh_command(shlex.join(cmd))
    a_s: list[float] = []
    b_s: list[float] = []
    b_cpu: list[float] = []
    for _ in range(max(1, repeats)):
        wall, cpu = _run_probe(b_cmd, 120.0)
        b_s.append(wall)
        b_cpu.append(cpu)
        a_s.append(_run_probe(cmd, 180.0, preexec_fn=runner.preexec())[0])
    return {"ratio": statistics.median(a_s) / statistics.median(b_s),
            "ratio_of_fastest": min(a_s) / min(b_s),
            "a_s": a_s, "b_s": b_s, "b_cpu_s": b_cpu,
            "method": f"pure-Python loop x{loops}, median of {len(a_s)}, A as the flow's processes run, B over ssh"}


def core_blocks_for(cpu_seconds: float) -> dict[str, Any]:
    """Blocks of the sample's core logic that take ``cpu_seconds`` of CPU unthrottled (here = B)."""
    from samples._workload import calibrate_blocks

    best = None
    for _ in range(3):
        cal = calibrate_blocks(cpu_seconds, probe_cpu_seconds=0.1)
        if best is None or cal.seconds_per_block < best.seconds_per_block:
            best = cal
    assert best is not None
    return {"blocks": best.blocks, "seconds_per_block": best.seconds_per_block,
            "cpu_s": best.predicted_seconds}


def wiredprof_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wiredprof", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class StepFailed(RuntimeError):
    pass


@dataclass
class Step:
    args: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    in_a: bool


def run_step(workdir: Path, args: list[str], *, runner: PerProcessCpu | SingleQuota | None,
             timeout: float, check: bool = True, steps: list[Step] | None = None) -> Step:
    """One `wiredprof ...` command in the work dir, inside A when `runner` is given."""
    cmd = wiredprof_cmd(*args)
    log(("[in A] " if runner else "") + "$ wiredprof " + shlex.join(args))
    t0 = time.perf_counter()
    kw: dict[str, Any] = dict(cwd=workdir, env=child_env(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    try:
        if runner is not None:
            proc = runner.run(cmd, timeout=timeout, **kw)
        else:
            proc = subprocess.run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"`wiredprof {args[0]}` did not finish in {timeout:.0f} s") from exc
    step = Step(args, proc.returncode, time.perf_counter() - t0, proc.stdout, proc.stderr, runner is not None)
    if steps is not None:
        steps.append(step)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise StepFailed(f"`wiredprof {shlex.join(args)}` exited {proc.returncode}: " + " | ".join(tail))
    return step


def stage_of(profile: dict[str, Any], name: str) -> dict[str, Any] | None:
    for s in profile.get("stages", []):
        if f"{s['pipeline']}.{s['stage']}" == name:
            return s
    return None


def pipeline_of(profile: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in profile.get("pipelines", []) if p["name"] == name), None)


def spread(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "values": []}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "values": vals}


# --------------------------------------------------------------------------- one repeat


@dataclass
class Settings:
    scale: float
    repeat: int
    processes: bool
    runs: int
    quick: bool
    memory_variant: bool
    core_blocks: int = 0
    core_memory_mb: int = 0
    memory_limit_mb: int = 0
    keep: Path | None = None
    target: str = "ssh"
    extra: dict[str, Any] = field(default_factory=dict)

    def flow_args(self, memory_mb: int = 0) -> list[str]:
        args = ["--scale", f"{self.scale:g}", "--core-blocks", str(self.core_blocks),
                "--seconds", f"{self.flow_seconds():g}"]
        if self.processes:
            args.append("--processes")
        if memory_mb:
            args += ["--core-memory-mb", str(memory_mb)]
        return args

    def flow_seconds(self) -> float:
        """wiredflow's own limit: well past the runs we ask wiredprof for (it stops the flow)."""
        return max(60.0, 6 * self.runs * (CORE_ON_A_S + 3.0) * self.scale + 60.0)

    def analyze_timeout(self) -> float:
        return 2 * self.flow_seconds() + 120.0


def project(root: Path, name: str, hosts: SimHosts) -> Path:
    d = root / name
    d.mkdir(parents=True)
    ProjectConfig(d / "wiredprof.toml").add_host(hosts.b.host_entry("B", python=sys.executable))
    return d


def analyze_args(s: Settings, out: str, flow_log: str, memory_mb: int = 0) -> list[str]:
    return ["analyze", str(SAMPLE), "--runs", str(s.runs), "--no-call-tree", "-q",
            "--flow-log", flow_log, "-o", out, "--", *s.flow_args(memory_mb)]


def one_repeat(k: int, s: Settings, hosts: SimHosts, runner: PerProcessCpu | SingleQuota,
               root: Path, cluster: Any = None) -> dict[str, Any]:
    """Raw ratio, analyze on A, check B, plan, offload, analyze with the plan applied."""
    log(f"repeat {k + 1}/{s.repeat}: load average {loadavg()}")
    steps: list[Step] = []
    work = project(root, f"repeat{k + 1}", hosts)
    load0 = loadavg()
    ratio = raw_speed_ratio(hosts, runner, repeats=3 if s.quick else 5)
    log(f"raw speed ratio A/B: {ratio['ratio']:.2f}x (A {['%.2f' % x for x in ratio['a_s']]} s, "
        f"B {['%.2f' % x for x in ratio['b_s']]} s)")
    run_step(work, analyze_args(s, "before.json", "before.log"), runner=runner,
             timeout=s.analyze_timeout(), steps=steps)
    check = run_step(work, ["hosts", "check", "B", "--json"], runner=runner, timeout=180, steps=steps)
    probe = json.loads(check.stdout)
    log(f"hosts check B: cpu_speed_ratio {probe['cpu_speed_ratio']:.2f}x, rtt {probe['rtt_s'] * 1e3:.2f} ms")
    out = plan_offload_compare(k, s, work, runner, steps, ratio, probe, load0)
    if cluster is not None:
        out["dask"] = dask_leg(k, s, cluster, runner, root, work / "before.json", ratio, load0)
    return out


def dask_leg(k: int, s: Settings, cluster: Any, runner: PerProcessCpu | SingleQuota, root: Path,
             before_path: Path, ratio: dict[str, Any], load0: list[float]) -> dict[str, Any]:
    """The same before profile, then B as a Dask cluster: check, plan, offload, analyze."""
    steps: list[Step] = []
    work = root / f"repeat{k + 1}-dask"
    work.mkdir(parents=True)
    ProjectConfig(work / "wiredprof.toml").add_host(HostEntry("B", "", dask=cluster.address))
    shutil.copy(before_path, work / "before.json")
    log(f"repeat {k + 1}: B as a Dask cluster at {cluster.address}")
    check = run_step(work, ["hosts", "check", "B", "--json"], runner=runner, timeout=300, steps=steps)
    probe = json.loads(check.stdout)
    log(f"hosts check B (Dask): cpu_speed_ratio {probe['cpu_speed_ratio']:.2f}x, "
        f"task round trip {probe['rtt_s'] * 1e3:.2f} ms")
    return plan_offload_compare(k, s, work, runner, steps, ratio, probe, load0)


def plan_offload_compare(k: int, s: Settings, work: Path, runner: PerProcessCpu | SingleQuota, steps: list[Step],
                         ratio: dict[str, Any], probe: dict[str, Any], load0: list[float]) -> dict[str, Any]:
    """After `hosts check B`: plan, offload core_logic to B, analyze with the plan applied, compare."""
    plan_step = run_step(work, ["plan", "before.json", "--json"], runner=None, timeout=60, steps=steps)
    plan = json.loads(plan_step.stdout)
    run_step(work, ["offload", "--stage", "core_logic", "--host", "B", str(SAMPLE)], runner=None,
             timeout=120, steps=steps)
    run_step(work, analyze_args(s, "after.json", "after.log"), runner=runner,
             timeout=s.analyze_timeout(), steps=steps)
    cmp_step = run_step(work, ["compare", "before.json", "after.json"], runner=None, timeout=60,
                        check=False, steps=steps)
    before = json.loads((work / "before.json").read_text())
    after = json.loads((work / "after.json").read_text())
    return summarize_repeat(k, ratio, probe, plan, before, after, steps, cmp_step.stdout, load0, work)


def start_dask_b(hosts: SimHosts) -> Any:
    """A real Dask scheduler and one worker inside B's network namespace, reachable from A."""
    from wiredprof.testing.localcluster import start_local_cluster

    return start_local_cluster(workers=1, nthreads=2, host=hosts.b.address,
                               prefix=("ip", "netns", "exec", hosts.b.netns))


def recommendation(plan: dict[str, Any], stage: str = STAGE, host: str = "B") -> dict[str, Any] | None:
    return next((r for r in plan.get("recommendations", []) if r["stage"] == stage and r["host"] == host), None)


def summarize_repeat(k: int, ratio: dict[str, Any], probe: dict[str, Any], plan: dict[str, Any],
                     before: dict[str, Any], after: dict[str, Any], steps: list[Step], compare_text: str,
                     load0: list[float], work: Path) -> dict[str, Any]:
    rec = recommendation(plan) or {}
    sb, sa = stage_of(before, STAGE) or {}, stage_of(after, STAGE) or {}
    pb, pa = pipeline_of(before, PIPELINE) or {}, pipeline_of(after, PIPELINE) or {}
    stage_a, stage_b = sb.get("mean_s"), sa.get("mean_s")
    cyc_a, cyc_b = pb.get("wall_s"), pa.get("wall_s")
    predicted = rec.get("predicted_s")
    spans = sorted((t for t in after.get("timeline", []) if f"{t['pipeline']}.{t['stage']}" == STAGE
                    and not t.get("sampled") and not t.get("error")), key=lambda t: t["start_s"])
    first_b = spans[0]["wall_s"] if spans else None
    steady = statistics.fmean(t["wall_s"] for t in spans[1:]) if len(spans) > 1 else stage_b
    out = {
        "repeat": k + 1,
        "workdir": str(work),
        "loadavg_start": load0,
        "loadavg_end": loadavg(),
        "raw_speed_ratio": ratio["ratio"],
        "raw": ratio,
        "probe_cpu_speed_ratio": probe.get("cpu_speed_ratio"),
        "probe": {
            k2: probe.get(k2)
            for k2 in ("cpu_speed_ratio", "local_loop_s", "remote_loop_s", "rtt_s",
                       "bandwidth_bytes_per_s", "memory_bytes", "cores", "connect_s")
        },
        "stage_on_a_s": stage_a,
        "stage_on_b_s": stage_b,
        "stage_speedup": stage_a / stage_b if stage_a and stage_b else None,
        "stage_on_b_steady_s": steady,
        "stage_on_b_first_call_s": first_b,
        "stage_calls_on_b": len(spans),
        "stage_speedup_steady": stage_a / steady if stage_a and steady else None,
        "start_s_planned": rec.get("start_s"),
        "pipeline_cycle_on_a_s": cyc_a,
        "pipeline_cycle_on_b_s": cyc_b,
        "pipeline_speedup": cyc_a / cyc_b if cyc_a and cyc_b else None,
        "predicted_stage_s": predicted,
        "predicted_pipeline_cycle_s": rec.get("predicted_pipeline_cycle_s"),
        "prediction_error_pct": (100.0 * (predicted - steady) / steady) if predicted and steady else None,
        "prediction_error_all_calls_pct": (100.0 * (predicted - stage_b) / stage_b) if predicted and stage_b else None,
        "pipeline_prediction_error_pct": (100.0 * (rec["predicted_pipeline_cycle_s"] - cyc_b) / cyc_b)
        if rec.get("predicted_pipeline_cycle_s") and cyc_b else None,
        "recommendation": rec,
        "recommended_first": (plan.get("recommendations") or [{}])[0].get("stage") == STAGE,
        "plan": plan,
        "before": before,
        "after": after,
        "compare": compare_text,
        "steps": [{"cmd": "wiredprof " + shlex.join(st.args), "in_a": st.in_a, "exit": st.returncode,
                   "seconds": round(st.seconds, 2)} for st in steps],
    }
    if out["stage_speedup"]:
        out["stage_share_of_raw"] = out["stage_speedup"] / ratio["ratio"]
    log(f"repeat {k + 1}: stage {stage_a and round(stage_a, 2)} s on A -> {stage_b and round(stage_b, 2)} s on B "
        f"(x{out['stage_speedup'] or 0:.2f}, raw x{ratio['ratio']:.2f}); pipeline_3 cycle "
        f"{cyc_a and round(cyc_a, 2)} -> {cyc_b and round(cyc_b, 2)} s (x{out['pipeline_speedup'] or 0:.2f}); "
        f"predicted {predicted and round(predicted, 2)} s ({out['prediction_error_pct'] or 0:+.1f} %)")
    return out


# --------------------------------------------------------------------------- the whole run


def run(s: Settings, argv: list[str]) -> dict[str, Any]:
    check_available()
    t_start = time.perf_counter()
    machine = machine_info()
    log(f"load average {machine['loadavg_start']}; sizing the core logic to "
        f"{CORE_ON_A_S / TARGET_RATIO * s.scale:g} s of CPU unthrottled (= {CORE_ON_A_S * s.scale:g} s on A)")
    blocks = core_blocks_for(CORE_ON_A_S / TARGET_RATIO * s.scale)
    s.core_blocks = blocks["blocks"]
    root = Path(tempfile.mkdtemp(prefix="wiredprof-refbench-")) if s.keep is None else s.keep
    root.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"schema": SCHEMA, "argv": argv, "scale": s.scale, "repeat": s.repeat,
                              "mode": "processes" if s.processes else "threads", "runs_per_analyze": s.runs,
                              "core_blocks": blocks, "machine": machine}
    try:
        with SimHosts(target_ratio=TARGET_RATIO) as hosts:
            cal = hosts.calibration
            log(f"calibrated A: quota {hosts.a.quota_us} us / {hosts.a.period_us} us, "
                f"ratio {cal.ratio if cal else 0:.2f}x")
            info = hosts.info.to_dict()
            runner: PerProcessCpu | SingleQuota
            runner = PerProcessCpu(hosts.a, os.cpu_count() or 1) if s.processes else SingleQuota(hosts.a)
            runner.start()
            measuring: dict[str, Any] = {}
            cluster = start_dask_b(hosts) if s.target == "dask" else None
            try:
                repeats = [one_repeat(k, s, hosts, runner, root, cluster) for k in range(s.repeat)]
                if s.memory_variant:
                    measuring = memory_measuring_run(s, hosts, runner, root)
            finally:
                runner.stop()
                if cluster is not None:
                    cluster.stop()
            result["simulation"] = simulation_dict(hosts, info, runner, s)
            quota = hosts.a.quota_us if not s.processes else runner.quota_us
        if s.memory_variant:
            result["memory_variant"] = memory_variant(s, quota, root, measuring)
    finally:
        if s.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    result["repeats"] = repeats
    result.update(aggregate(repeats))
    if s.target == "dask":
        result["dask"] = dask_figures(result, [r["dask"] for r in repeats])
    result["machine"]["loadavg_end"] = loadavg()
    result["elapsed_s"] = time.perf_counter() - t_start
    return result


def simulation_dict(hosts: SimHosts, info: dict[str, Any], runner: Any, s: Settings) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    if isinstance(runner, PerProcessCpu):
        per_process = (f"The flow runs in wiredflow's process mode (one process per pipeline), and every "
                       f"process of A is moved into a cgroup of its own under A with that calibrated quota "
                       f"({runner.quota_us} us per {runner.period_us} us), A as a whole getting "
                       f"{cores} x that ({runner.quota_us * cores} us): A is a {cores}-core machine whose "
                       f"every core runs 1/{TARGET_RATIO:g} as fast as B's; wiredflow's busy-looping MQTT "
                       f"pipeline cannot take the core logic's CPU ({runner.moved} processes were moved "
                       f"into their own cgroup). The `wiredprof analyze` process that runs the flow, and "
                       f"`wiredprof hosts check` (whose local loop is host A's side of the speed ratio), "
                       f"run in A too.")
    else:
        per_process = ("The flow runs in wiredflow's threads mode, in one process inside A under the "
                       "calibrated quota (a GIL-bound process uses one core: A's core is 1/4 as fast); "
                       "the core logic shares that core (and the GIL) with wiredflow's busy-looping MQTT "
                       "pipeline on A, and has a worker process of its own on B.")
    d = dict(info)
    d.pop("identity_path", None)
    d["per_process"] = per_process
    d["description"] = info["description"] + " " + per_process
    return d


def _every_within(values: list[Any], limit: float) -> bool:
    """True when there is at least one value and every one is within ±`limit` (the issue: "in every repeat")."""
    return bool(values) and all(v is not None and abs(v) <= limit for v in values)


def aggregate(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["raw_speed_ratio", "stage_speedup", "pipeline_speedup", "predicted_stage_s", "measured_stage_s",
            "prediction_error_pct", "stage_on_a_s", "pipeline_cycle_on_a_s", "pipeline_cycle_on_b_s",
            "predicted_pipeline_cycle_s", "stage_share_of_raw", "probe_cpu_speed_ratio",
            "pipeline_prediction_error_pct"]
    keys += ["stage_on_b_s", "stage_on_b_steady_s", "stage_on_b_first_call_s", "stage_speedup_steady",
             "prediction_error_all_calls_pct"]
    for r in repeats:
        r["measured_stage_s"] = r["stage_on_b_steady_s"]
    spreads = {k: spread([r.get(k) for r in repeats]) for k in keys}
    out: dict[str, Any] = {k: v["median"] for k, v in spreads.items()}
    out["spread"] = spreads
    share = out.get("stage_share_of_raw")
    out["targets"] = {
        "stage_speedup_min": TARGET_STAGE_SPEEDUP, "share_of_raw_min": TARGET_SHARE_OF_RAW,
        "pipeline_speedup_min": TARGET_PIPELINE_SPEEDUP, "prediction_error_pct_max": TARGET_PREDICTION_PCT,
        "stage_speedup_met": bool(out["stage_speedup"] and out["stage_speedup"] >= TARGET_STAGE_SPEEDUP),
        "share_of_raw_met": bool(share and share >= TARGET_SHARE_OF_RAW),
        "pipeline_speedup_met": bool(out["pipeline_speedup"] and out["pipeline_speedup"] >= TARGET_PIPELINE_SPEEDUP),
        "prediction_met": _every_within([r.get("prediction_error_pct") for r in repeats], TARGET_PREDICTION_PCT),
    }
    return out


def dask_figures(ssh: dict[str, Any], legs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Dask target's medians, and its targets against the SSH target's (issue 13)."""
    out = aggregate(legs)
    ssh_speedup, speedup = ssh.get("stage_speedup"), out.get("stage_speedup")
    out["share_of_ssh_stage_speedup"] = speedup / ssh_speedup if speedup and ssh_speedup else None
    out["targets"] = {
        "share_of_ssh_stage_speedup_min": TARGET_DASK_SHARE_OF_SSH,
        "prediction_error_pct_max": TARGET_PREDICTION_PCT,
        "share_of_ssh_met": bool(out["share_of_ssh_stage_speedup"]
                                 and out["share_of_ssh_stage_speedup"] >= TARGET_DASK_SHARE_OF_SSH),
        "prediction_met": _every_within([r.get("prediction_error_pct") for r in legs], TARGET_PREDICTION_PCT),
    }
    return out


def machine_info() -> dict[str, Any]:
    return _machine_info(("wiredflow", "paramiko", "cloudpickle", "paho-mqtt"),
                         openssh=(subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
                                  or "unknown"),
                         mosquitto=shutil.which("mosquitto") or "/usr/sbin/mosquitto")


def measure_stage_peak(memory_mb: int) -> dict[str, Any]:
    """The core logic's own peak memory: one call in a fresh, unlimited process (ru_maxrss).

    wiredprof does not measure a stage's peak memory yet (`StageStats.rss_peak_bytes`
    stays 0), so the benchmark measures it here and writes it into the profile before
    planning.
    """
    code = (
        "import resource, json\n"
        "import samples.reference_flow as rf\n"
        "rf.core_logic(relevant_info=None, blocks=1, memory_mb=0)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"rf.core_logic(relevant_info=None, blocks=1, memory_mb={int(memory_mb)})\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'baseline_bytes': base * 1024, 'peak_bytes': peak * 1024}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    if proc.returncode != 0:
        raise StepFailed(f"measuring the core logic's peak memory failed: {proc.stderr.strip()[-300:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    d["stage_peak_bytes"] = d["peak_bytes"] - d["baseline_bytes"]
    d["method"] = ("one call of core_logic(memory_mb=%d) in a fresh process without a memory limit: "
                   "ru_maxrss after the call minus ru_maxrss after a warm-up call without the working set"
                   % memory_mb)
    return d


def flow_summary(log_path: Path) -> dict[str, Any] | None:
    """The sample's own `reference_flow summary: {...}` line from a flow log, if it got that far."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if "reference_flow summary: " in line:
            try:
                return json.loads(line.split("reference_flow summary: ", 1)[1])
            except ValueError:
                return None
    return None


def oom_lines(log_path: Path) -> list[str]:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    keys = ("MemoryError", "Killed", "SIGKILL", "exitcode", "died", "-9")
    return [ln.strip()[:300] for ln in text.splitlines() if any(k in ln for k in keys)][:8]


def memory_measuring_run(s: Settings, hosts: SimHosts, runner: Any, root: Path) -> dict[str, Any]:
    """Profile the flow with the core logic's working set in A *without* a memory limit, and measure its peak.

    The run that fails under the limit leaves no completed core-logic call to plan from
    (the process is killed mid-call), so the planner gets this profile, with the stage's
    peak memory written in (wiredprof does not measure stage memory yet).
    """
    work = project(root, "memory-measure", hosts)
    log(f"memory variant, measuring run: the core logic with its {s.core_memory_mb} MiB working set, "
        "in A without a memory limit")
    step = run_step(work, analyze_args(s, "measure.json", "measure.log", s.core_memory_mb), runner=runner,
                    timeout=s.analyze_timeout())
    profile = json.loads((work / "measure.json").read_text())
    peak = measure_stage_peak(s.core_memory_mb)
    log(f"core logic's own peak memory: {peak['stage_peak_bytes'] / 2**20:.0f} MiB")
    stage = stage_of(profile, STAGE)
    if stage is not None:
        stage["rss_peak_bytes"] = int(peak["stage_peak_bytes"])
    profile.setdefault("notes", []).append(
        f"benchmarks/reference.py wrote rss_peak_bytes of {STAGE} ({peak['stage_peak_bytes']} bytes, "
        "measured in a separate process): wiredprof does not measure stage memory yet")
    return {"profile": profile, "peak": peak, "seconds": step.seconds,
            "stage": {k: (stage or {}).get(k) for k in ("calls", "mean_s", "cpu_s", "errors")}}


def killed_lines(before: list[str]) -> list[str]:
    """New "Killed process" lines of the kernel log (empty where dmesg is not readable)."""
    return [ln for ln in kernel_oom_lines() if ln not in set(before)]


def kernel_oom_lines() -> list[str]:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.splitlines() if "Killed process" in ln][-50:]


def memory_variant(s: Settings, quota_us: int, root: Path, measuring: dict[str, Any]) -> dict[str, Any]:
    """A limited to MEMORY_LIMIT_MB, the core logic holding CORE_MEMORY_MB: fails on A, runs on B."""
    limit = s.memory_limit_mb * 2**20
    log(f"memory variant: A limited to {s.memory_limit_mb} MiB, the core logic holds {s.core_memory_mb} MiB")
    steps: list[Step] = []
    out: dict[str, Any] = {"memory_limit_bytes": limit, "core_memory_mb": s.core_memory_mb}
    with SimHosts(target_ratio=TARGET_RATIO, calibrate=False, quota_us=quota_us,
                  memory_limit_bytes=limit) as hosts:
        runner: PerProcessCpu | SingleQuota
        runner = PerProcessCpu(hosts.a, os.cpu_count() or 1) if s.processes else SingleQuota(hosts.a)
        runner.start()
        try:
            work = project(root, "memory", hosts)
            out["simulation"] = hosts.describe()
            out["swap_off"] = hosts.a.swap_off
            mem0 = hosts.a.memory_stats()
            klog0 = kernel_oom_lines()
            t0 = time.perf_counter()
            before = run_step(work, analyze_args(s, "before.json", "before.log", s.core_memory_mb), runner=runner,
                              timeout=s.analyze_timeout(), check=False, steps=steps)
            mem1 = hosts.a.memory_stats()
            out["on_a"] = {
                "exit": before.returncode, "seconds": time.perf_counter() - t0,
                "outcome": hosts.a.memory_outcome(before.returncode, mem0),
                "oom_kills": mem1.get("oom_kill", 0) - mem0.get("oom_kill", 0),
                "kernel_log": killed_lines(klog0),
                "limit_hits": mem1.get("failcnt", 0) - mem0.get("failcnt", 0),
                "a_peak_bytes": mem1.get("peak_bytes"),
                "flow_log": oom_lines(work / "before.log"),
                "stderr_tail": before.stderr.strip().splitlines()[-6:],
                "summary": flow_summary(work / "before.log"),
            }
            prof_path = work / "before.json"
            profile = json.loads(prof_path.read_text()) if prof_path.is_file() else None
            out["on_a"]["profile_status"] = profile.get("status") if profile else None
            stage = stage_of(profile, STAGE) if profile else None
            out["on_a"]["stage"] = {k: stage.get(k) for k in ("calls", "errors", "mean_s", "cpu_s", "last_error")} \
                if stage else None
            a = out["on_a"]
            killed = a["oom_kills"] > 0 or any("Killed process" in ln for ln in a["kernel_log"])
            if killed:
                a["outcome"] = ("the kernel's OOM killer killed a process of A (SIGKILL, no MemoryError)"
                                + (f": `{a['kernel_log'][-1].split('] ', 1)[-1][:120]}`" if a["kernel_log"] else ""))
            a["stage_failed"] = bool(killed or before.returncode != 0 or not stage or stage.get("errors")
                                     or not stage.get("calls"))
            a["wiredprof_noticed"] = bool(before.returncode != 0 or (profile or {}).get("status") != "ok"
                                          or (stage or {}).get("errors"))
            log(f"memory variant on A: {a['outcome']} (exit {before.returncode}); stage {a['stage']}")
            out["stage_peak"] = measuring["peak"]
            out["measuring_run"] = {k: measuring[k] for k in ("stage", "seconds")}
            profile = measuring["profile"]
            (work / "before-with-peak.json").write_text(json.dumps(profile, indent=2))
            run_step(work, ["hosts", "check", "B", "--json"], runner=runner, timeout=180, steps=steps)
            plan = json.loads(run_step(work, ["plan", "before-with-peak.json", "--json"], runner=None,
                                       timeout=60, steps=steps).stdout)
            rec = recommendation(plan) or {}
            out["plan"] = {"recommendation": rec, "first": (plan.get("recommendations") or [{}])[0],
                           "hosts": plan.get("hosts")}
            log(f"memory variant plan: {rec.get('reason')}")
            run_step(work, ["offload", "--stage", "core_logic", "--host", "B", str(SAMPLE)], runner=None,
                     timeout=60, steps=steps)
            mem2 = hosts.a.memory_stats()
            after = run_step(work, analyze_args(s, "after.json", "after.log", s.core_memory_mb), runner=runner,
                             timeout=s.analyze_timeout(), check=False, steps=steps)
            mem3 = hosts.a.memory_stats()
            prof_after = json.loads((work / "after.json").read_text()) if (work / "after.json").is_file() else {}
            sa = stage_of(prof_after, STAGE) or {}
            summ = flow_summary(work / "after.log")
            outs = (((summ or {}).get("pipelines") or {}).get("pipeline_3") or {}).get("core_outputs") or []
            out["after_offload"] = {
                "exit": after.returncode,
                "outcome": hosts.a.memory_outcome(after.returncode, mem2),
                "oom_kills": mem3.get("oom_kill", 0) - mem2.get("oom_kill", 0),
                "profile_status": prof_after.get("status"),
                "stage": {k: sa.get(k) for k in ("calls", "errors", "mean_s", "host")},
                "core_outputs": len(outs),
                "core_output_memory_mb": sorted({o.get("memory_mb") for o in outs if isinstance(o, dict)} - {None}),
                "pipeline_3_cycle_s": (pipeline_of(prof_after, PIPELINE) or {}).get("wall_s"),
            }
            out["profiles"] = {"before": profile, "after": prof_after}
            log(f"memory variant after offload: {out['after_offload']['outcome']}, stage {out['after_offload']['stage']}")
        finally:
            runner.stop()
    out["steps"] = [{"cmd": "wiredprof " + shlex.join(st.args), "in_a": st.in_a, "exit": st.returncode,
                     "seconds": round(st.seconds, 2)} for st in steps]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=None, help="reference durations x this (default 0.1)")
    ap.add_argument("--repeat", type=int, default=1, help="whole before/after runs (default 1)")
    ap.add_argument("--runs", type=int, default=None,
                    help="pipeline cycles per analyze (default 5: 4 calls measured on B after the first; quick 2)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--processes", dest="processes", action="store_true", default=True,
                      help="one process per pipeline, each with A's per-core quota (default)")
    mode.add_argument("--threads", dest="processes", action="store_false",
                      help="wiredflow's threads mode: the flow in one process under one quota")
    ap.add_argument("--memory-variant", action="store_true",
                    help=f"also: A limited to {MEMORY_LIMIT_MB} MiB, core logic holding {CORE_MEMORY_MB} MiB")
    ap.add_argument("--memory-limit-mb", type=int, default=MEMORY_LIMIT_MB, help=argparse.SUPPRESS)
    ap.add_argument("--core-memory-mb", type=int, default=CORE_MEMORY_MB, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="tiny scale, one repeat: a smoke run")
    ap.add_argument("--target", choices=("ssh", "dask"), default="ssh",
                    help="dask: also run B as a Dask scheduler and worker in B's namespace, side by side")
    add_report_option(ap, DEFAULT_REPORT)
    ap.add_argument("--keep", type=Path, default=None, help="keep the work directories (profiles, logs) here")
    args = ap.parse_args(argv)
    if args.scale is None:
        args.scale = 0.02 if args.quick else 0.1
    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if not args.scale > 0 or args.repeat < 1 or args.runs < 1:
        ap.error("--scale must be > 0, --repeat and --runs >= 1")
    return args


def _slim_repeat(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("before", "after", "plan")}
    if isinstance(out.get("dask"), dict):
        out["dask"] = _slim_repeat(out["dask"])
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    s = Settings(scale=args.scale, repeat=args.repeat, processes=args.processes, runs=args.runs,
                 quick=args.quick, memory_variant=args.memory_variant, keep=args.keep,
                 core_memory_mb=args.core_memory_mb, memory_limit_mb=args.memory_limit_mb, target=args.target)
    try:
        result = run(s, argv)
    except SimHostsUnavailable as exc:
        print(f"reference: cannot simulate hosts A and B here: {exc}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"reference: {exc}", file=sys.stderr)
        return 1
    report = args.report
    if report == DEFAULT_REPORT and s.target == "dask":
        report = DEFAULT_DASK_REPORT  # the SSH-only report of the scale-1 run stays as it is
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        image, note = write_timeline(result, report.with_name(report.stem + "-timeline.png"))
        report.write_text(render_report(result, image, note))
        result["report"] = str(report)
        result["timeline_image"] = str(report.with_name(image)) if image else None
        log(f"wrote {report}")
    slim = {k: v for k, v in result.items() if k != "repeats"}
    slim["repeats"] = [_slim_repeat(r) for r in result["repeats"]]
    if isinstance(slim.get("memory_variant"), dict):
        slim["memory_variant"] = {k: v for k, v in slim["memory_variant"].items() if k != "profiles"}
    if args.json:
        print(json.dumps(slim, indent=2, default=str))
    return 0


# --------------------------------------------------------------------------- the report


def _s(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f} s"


def _x(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}x"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


def _range(sp: dict[str, Any], fmt: Callable[[float | None], str]) -> str:
    if sp.get("median") is None:
        return "–"
    if len(sp["values"]) == 1:
        return fmt(sp["median"])
    return f"{fmt(sp['median'])} ({fmt(sp['min'])} – {fmt(sp['max'])})"


def _ok(flag: bool) -> str:
    return "**met**" if flag else "**missed**"


def write_timeline(result: dict[str, Any], png: Path) -> tuple[str | None, str]:
    """Before/after timelines of the median repeat as a PNG next to the report (SVG if Chromium fails)."""
    from wiredprof.profile import Profile
    from wiredprof.reports.timeline import render_timelines_svg
    from wiredprof.testing.chromium import write_png

    reps = [r for r in result["repeats"] if r.get("stage_speedup")]
    if not reps:
        return None, "no repeat produced both profiles"
    reps.sort(key=lambda r: r["stage_speedup"])
    rep = reps[len(reps) // 2]
    before, after = Profile.from_dict(rep["before"]), Profile.from_dict(rep["after"])
    svg = render_timelines_svg([("before: every stage on host A", before),
                                ("after: pipeline_3.core_logic offloaded to host B", after)], width=1100)
    try:
        write_png(svg, png)
        return png.name, f"repeat {rep['repeat']} (the median stage speed-up)"
    except Exception as exc:  # no Chromium: keep the SVG, which markdown viewers show too
        svg_path = png.with_suffix(".svg")
        svg_path.write_text(svg)
        return svg_path.name, f"repeat {rep['repeat']}; PNG not written ({type(exc).__name__}: {exc})"


def dask_section(result: dict[str, Any]) -> list[str]:
    """The Dask target next to the SSH target (`--target dask`)."""
    d, sp, t = result["dask"], result["dask"]["spread"], result["dask"]["targets"]
    ssh = result["spread"]
    share = d.get("share_of_ssh_stage_speedup")
    probe = next((r["dask"]["probe"] for r in result["repeats"] if r.get("dask")), {})
    return [
        "## B as a Dask cluster (`--target dask`), in the same run", "",
        "The same \"before\" profile on A; then B is a real `dask scheduler` and one `dask worker` (2 threads) "
        "inside B's network namespace, on B's unthrottled CPU, added as `[hosts.B] dask = \"tcp://...\"`; "
        "`wiredprof hosts check B`, `plan`, `offload` and `analyze` as for SSH. Every call pays Dask's task "
        f"round trip plus wiredprof's at-most-once start handshake: {probe.get('rtt_s', 0) * 1e3:.1f} ms measured "
        "by the probe (the planner's round trip).", "",
        markdown_table(["figure", "SSH target", "Dask target", "target", ""], [
            ["core_logic stage speed-up", _range(ssh["stage_speedup"], _x), _range(sp["stage_speedup"], _x),
             f"≥ {100 * TARGET_DASK_SHARE_OF_SSH:.0f} % of SSH's",
             f"{'–' if share is None else f'{100 * share:.1f} %'} {_ok(t['share_of_ssh_met'])}"],
            ["pipeline_3 cycle speed-up", _range(ssh["pipeline_speedup"], _x), _range(sp["pipeline_speedup"], _x),
             "", ""],
            ["planner's prediction error (first call excluded)", _range(ssh["prediction_error_pct"], _pct),
             _range(sp["prediction_error_pct"], _pct), f"within ±{TARGET_PREDICTION_PCT:.0f} % in every repeat",
             _ok(t["prediction_met"])],
            ["core_logic per call on B: predicted / measured",
             f"{_range(ssh['predicted_stage_s'], _s)} / {_range(ssh['measured_stage_s'], _s)}",
             f"{_range(sp['predicted_stage_s'], _s)} / {_range(sp['measured_stage_s'], _s)}", "", ""],
            ["first call on B (connect, ship the callable)", _range(ssh["stage_on_b_first_call_s"], _s),
             _range(sp["stage_on_b_first_call_s"], _s), "", ""],
        ]),
        "",
        "How the cluster's speed is measured: each worker with the SSH probe's own speed rounds (a round on "
        "the worker, a round here, in turn, until their ratio agrees), the cluster's ratio the workers' mean "
        "time per call. Before (the previous report: Dask +45.5 %, SSH +51.2 %, load average 5 to 9), each "
        "worker ran 3 rounds of the loop apart from this side's 3, so the two sides of its ratio were "
        "measured under different loads; the rest of both errors is the load changing between the probe "
        "and the run, which no probe foresees (the prediction's range shows it).",
        "",
    ]


def render_report(result: dict[str, Any], image: str | None, image_note: str) -> str:
    m, sim, sp, t = result["machine"], result["simulation"], result["spread"], result["targets"]
    reps = result["repeats"]
    cmd = "PYTHONPATH=$PWD python -m benchmarks.reference " + shlex.join(result["argv"])
    L: list[str] = []
    add = L.append
    add("# Reference case: core logic 60 s on host A → 15 s on host B (A and B simulated)")
    add("")
    add(f"Written by `{cmd.strip()}` on {m['date_utc']} (regenerate it with that command; not edited by hand).")
    add("")
    add(f"- **Machine:** {m['cpu_model']}, {m['cpus']} CPUs, {m['memory_bytes'] / 2**30:.1f} GiB, "
        f"Linux {m['kernel']}; shared with other work: load average {m['loadavg_start']} at the start, "
        f"{m.get('loadavg_end')} at the end (1, 5, 15 min).")
    add(f"- **Versions:** {m['python']}, wiredprof {m['wiredprof']}, "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + f", {m['openssh']}.")
    add(f"- **Run:** scale {result['scale']:g} (core logic {CORE_ON_A_S * result['scale']:g} s on A, "
        f"{CORE_ON_A_S / TARGET_RATIO * result['scale']:g} s on B), {result['repeat']} repeat(s), "
        f"`--runs {result['runs_per_analyze']}` cycles per profiled run, wiredflow {result['mode']} mode, "
        f"core logic fixed at `--core-blocks {result['core_blocks']['blocks']}` "
        f"({result['core_blocks']['cpu_s']:.2f} s of CPU unthrottled) on both runs; "
        f"{result['elapsed_s'] / 60:.1f} min in all.")
    add("- **Hosts:** simulated on this machine, see [How A and B were simulated](#how-a-and-b-were-simulated). "
        "Every step is wiredprof's own command (listed at the end).")
    add("")
    add("## Result")
    add("")
    add("Medians over the repeats, (min – max) when repeated.")
    add("")
    add(markdown_table(["figure", "measured", "target", ""], [
        ["raw speed ratio A/B (the single-thread probe, in A and on B over ssh, this run)",
         _range(sp["raw_speed_ratio"], _x), "4.0x (calibrated)", ""],
        ["**core_logic stage speed-up** (mean per call on A / mean per call on B, wiredprof's `mean_s`)",
         _range(sp["stage_speedup"], _x), f"≥ {TARGET_STAGE_SPEEDUP}x", _ok(t["stage_speedup_met"])],
        ["… as a share of the raw ratio",
         _range(sp["stage_share_of_raw"], lambda v: "–" if v is None else f"{100 * v:.1f} %"),
         f"≥ {100 * TARGET_SHARE_OF_RAW:.0f} %", _ok(t["share_of_raw_met"])],
        ["**pipeline_3 cycle speed-up** (mean cycle before / after)", _range(sp["pipeline_speedup"], _x),
         f"≥ {TARGET_PIPELINE_SPEEDUP}x", _ok(t["pipeline_speedup_met"])],
        ["**planner's prediction error** for core_logic on B (predicted vs measured per call, first call excluded)",
         _range(sp["prediction_error_pct"], _pct), f"within ±{TARGET_PREDICTION_PCT:.0f} % in every repeat",
         _ok(t["prediction_met"])],
        ["… against the mean of all calls, the first one included",
         _range(sp["prediction_error_all_calls_pct"], _pct), "", ""],
        ["core_logic per call: on A / predicted on B / measured on B",
         f"{_range(sp['stage_on_a_s'], _s)} / {_range(sp['predicted_stage_s'], _s)} / {_range(sp['measured_stage_s'], _s)}",
         f"{CORE_ON_A_S * result['scale']:g} s / {CORE_ON_A_S / TARGET_RATIO * result['scale']:g} s", ""],
    ]))
    add("")
    rep = reps[len(reps) // 2] if reps else None
    # -- per pipeline and per stage (median repeat by stage speed-up)
    ordered = sorted([r for r in reps if r.get("stage_speedup")], key=lambda r: r["stage_speedup"])
    rep = ordered[len(ordered) // 2] if ordered else rep
    if rep is not None:
        before, after, rec = rep["before"], rep["after"], rep["recommendation"]
        add(f"## Per pipeline and per stage (repeat {rep['repeat']}, the median one)")
        add("")
        add("\"Predicted on B\" is `wiredprof plan`'s prediction with pipeline_3.core_logic on B; every other "
            "stage stays on A, and the planner predicts it unchanged.")
        add("")
        rows: list[list[Any]] = []
        for p in before["pipelines"]:
            pa = pipeline_of(after, p["name"]) or {}
            pred = rec.get("predicted_pipeline_cycle_s") if p["name"] == PIPELINE else p["wall_s"]
            ratio = p["wall_s"] / pa["wall_s"] if pa.get("wall_s") else None
            rows.append([p["name"], f"{_s(p['wall_s'])} ({p['runs']} cycles)", _s(pred),
                         f"{_s(pa.get('wall_s'))} ({pa.get('runs', 0)} cycles)", _x(ratio)])
        add(markdown_table(["pipeline", "cycle on A", "predicted, core_logic on B", "measured, core_logic on B",
                            "A / B"], rows))
        add("")
        rows = []
        for s_ in before["stages"]:
            name = f"{s_['pipeline']}.{s_['stage']}"
            sa = stage_of(after, name) or {}
            calls = max(1, s_["calls"])
            moved = name == STAGE
            pred = rec.get("predicted_s") if moved else s_["mean_s"]
            meas = sa.get("mean_s")
            ratio = s_["mean_s"] / meas if meas else None
            extra = (f" (all {sa.get('calls')} calls; {_s(rep['stage_on_b_steady_s'])} without the first, "
                     f"which took {_s(rep['stage_on_b_first_call_s'])})") if moved else ""
            rows.append([name, f"{_s(s_['mean_s'])} ({s_['cpu_s'] / calls:.2f} s, {(s_.get('cpu_queue_s') or 0) / calls:.2f} s)",
                         _s(pred), f"{_s(meas)}{extra}", _x(ratio), sa.get("host", "–")])
        add(markdown_table(["stage", "on A: mean (CPU, queued for a CPU)", "predicted on B", "measured", "A / measured",
                            "runs on"], rows))
        add("")
        add(f"The planner's reason: *{rec.get('reason', '–')}* — host B as `wiredprof hosts check B` measured it "
            f"from inside A: wall-time speed ratio {rep['probe']['cpu_speed_ratio']:.2f}x, CPU-time ratio "
            f"{rep['plan']['hosts'][0].get('cpu_time_ratio', 0):.2f} (CPU seconds here per wall second there), "
            f"round trip {rep['probe']['rtt_s'] * 1e3:.2f} ms; the one-off connection is planned apart "
            f"({_s(rec.get('start_s'))}).")
        add("")
    if result.get("dask"):
        L += dask_section(result)
    # -- timeline
    add("## Timelines before and after")
    add("")
    if image:
        add(f"![pipeline timelines before and after offloading core_logic to B]({image})")
        add("")
        add(f"One lane per pipeline, one bar per stage call; after, core_logic's calls are in the lane "
            f"`pipeline_3 @ B`. From {image_note}.")
    else:
        add(f"(no picture: {image_note})")
    add("")
    # -- per repeat
    add("## Every repeat")
    add("")
    add(markdown_table(
        ["repeat", "load avg (start)", "raw ratio", "core_logic on A", "on B: mean / without 1st / 1st call",
         "stage speed-up", "pipeline_3 cycle A → B", "speed-up", "predicted", "error"],
        [[r["repeat"], r["loadavg_start"][0] if r["loadavg_start"] else "–", _x(r["raw_speed_ratio"]),
          _s(r["stage_on_a_s"]),
          f"{_s(r['stage_on_b_s'])} / {_s(r['stage_on_b_steady_s'])} / {_s(r['stage_on_b_first_call_s'])}",
          _x(r["stage_speedup"]), f"{_s(r['pipeline_cycle_on_a_s'])} → {_s(r['pipeline_cycle_on_b_s'])}",
          _x(r["pipeline_speedup"]), _s(r["predicted_stage_s"]), _pct(r["prediction_error_pct"])] for r in reps]))
    add("")
    # -- memory
    mv = result.get("memory_variant")
    if mv:
        add("## Memory variant: the core logic does not fit in A")
        add("")
        add(f"A's cgroup also limits memory to {mv['memory_limit_bytes'] / 2**20:.0f} MiB "
            f"(swap {'off' if mv.get('swap_off') else 'not turned off'}), and the core logic builds and holds a "
            f"{mv['core_memory_mb']} MiB working set in every call (`--core-memory-mb {mv['core_memory_mb']}`); "
            f"scaled down from the seed's 4 GB on A and 64 GB on B.")
        add("")
        a = mv.get("on_a", {})
        st_a = a.get("stage") or {}
        add(f"1. **On A the stage fails:** {a.get('outcome')}. A's OOM-kill counter rose by {a.get('oom_kills')}, "
            f"core_logic completed {st_a.get('calls', 0)} call(s) "
            f"and the sample stored "
            f"{len((((a.get('summary') or {}).get('pipelines') or {}).get('pipeline_3') or {}).get('core_outputs') or [])}"
            f" core-logic result(s). `wiredprof analyze` exited {a.get('exit')} with profile status "
            f"`{a.get('profile_status')}`"
            + (" — **wiredprof did not notice**: in process mode a pipeline process killed by a signal is not "
               "reported as a failure (0 calls, 0 errors)." if not a.get("wiredprof_noticed") else "."))
        pk = mv.get("stage_peak", {})
        ms = mv.get("measuring_run", {})
        if pk:
            add(f"2. **Peak memory:** the killed call left no timed call to plan from (the planner places "
                f"stages by their timed calls). So the benchmark profiled the same flow in A "
                f"*without* the memory limit (a measuring run: core_logic {ms.get('stage', {}).get('calls')} "
                f"call(s), mean {_s(ms.get('stage', {}).get('mean_s'))}) and measured the stage's peak — "
                f"{pk.get('method')}: **{pk['stage_peak_bytes'] / 2**20:.0f} MiB** — and wrote it into that "
                f"profile (`before-with-peak.json`) before `wiredprof plan`.")
        pl = mv.get("plan")
        if pl:
            r = pl["recommendation"]
            add(f"3. **The planner places it on B:** recommended {r.get('recommended')}, first in the plan: "
                f"{pl['first'].get('stage') == STAGE}; reason: *{r.get('reason')}*.")
        elif mv.get("why_not_planned"):
            add(f"3. **Not planned:** {mv['why_not_planned']}.")
        af = mv.get("after_offload")
        if af:
            add(f"4. **After `wiredprof offload --stage core_logic --host B` the flow succeeds:** {af['outcome']}, "
                f"`wiredprof analyze` exited {af['exit']}, profile status `{af['profile_status']}`; core_logic "
                f"ran {af['stage'].get('calls')} time(s) on {af['stage'].get('host')} ({af['stage'].get('errors')} "
                f"errors, mean {_s(af['stage'].get('mean_s'))}), the sample stored {af['core_outputs']} core-logic "
                f"result(s), each computed with its {mv['core_memory_mb']} MiB working set on B.")
        add("")
        add("The stage's peak above is written into the profile by this benchmark from a separate measuring "
            "run: on A the stage never finished a call (it was killed), and the planner only places stages "
            "with timed calls. wiredprof itself records each stage's peak memory (RSS growth during a call) "
            "and the profiled process's memory limit, and its planner moves a stage that does not fit here.")
        add("")
    # -- simulation
    add("## How A and B were simulated")
    add("")
    add(sim["description"])
    add("")
    cal = (sim.get("calibration") or {}).get("rounds") or []
    if cal:
        add("Calibration rounds (probe in A vs the same probe unthrottled): " + "; ".join(
            f"quota {c['quota_us']} us → {c['ratio']:.2f}x (contention {c['contention']:.2f})" for c in cal) + ".")
        add("")
    add("Why one cgroup per process: the reference's \"core logic takes 60 s on A\" is the stage's own "
        "time on a slower CPU, 4x B's. A single 25 % quota for the whole flow would be one slow core shared by "
        "every pipeline, and wiredflow's MQTT pipeline busy-loops (`client.loop_start()` in a `while`), so the "
        "core logic would get half of it (8x, not 4x) in process mode, and half of the GIL in threads mode. With "
        "a quota per process, every process runs at most at the calibrated single-thread speed, as on a "
        "machine with 4x slower cores. `--threads` runs the flow in one process under one quota instead.")
    add("")
    add("## Reading the numbers")
    add("")
    add("- **CPU time under a quota.** In A a CPU-bound stage is throttled: its thread CPU time (`cpu_s`) is "
        "what B would need, and the rest of its wall time it is runnable but queued (`cpu_queue_s`, schedstat's "
        "run delay). A real 4x slower machine would show 4x the CPU time instead. The planner divides CPU "
        "seconds by the probe's CPU-time ratio (CPU seconds here per wall second on B) and leaves the queued "
        "time here; before that fix (commit \"planner: a stage's time queued for a CPU ...\") it divided the "
        "CPU seconds by the wall-time ratio and kept the queued time as I/O, and predicted +140 % at scale 0.05.")
    add("- **The first call on B** also connects the pipeline's process to B and ships the function: the "
        "planner reports that one-off cost apart (`start_s`), so the prediction is compared with the calls "
        "after the first; the stage speed-up uses wiredprof's mean of all calls (the first one included).")
    add("- **No call-tree sampling** (`--no-call-tree`): calls run under pyinstrument are kept out of the "
        "timings, and with a few 60 s calls none can be spared.")
    add("- **Noise:** the machine is shared; B's wall times carry the neighbours' load (A's quota does not "
        "care). The raw ratio is measured in every repeat, so the stage speed-up is compared with the ratio of "
        "the same moment.")
    add("")
    add("## Steps (repeat 1)")
    add("")
    for st_ in (reps[0]["steps"] if reps else []):
        add(f"- {'in A: ' if st_['in_a'] else ''}`{st_['cmd']}` → exit {st_['exit']}, {st_['seconds']:.1f} s")
    add("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
