"""The planner's concurrency on a Dask cluster, checked: calls of two pipelines side by side.

`samples/concurrent_flow.py` has two pipelines, each calling a CPU-bound stage (`heavy`).
pipeline_a's is offloaded to a real loopback Dask cluster first; then `wiredprof plan`
predicts pipeline_b's on the same cluster, and `offload` + `analyze` measure it. Two cluster
shapes, same machine, same run:

- one worker of 2 threads: 1 slot (the two calls share the worker's GIL): the model predicts
  pipeline_b's calls slowed by pipeline_a's calls in flight;
- two workers of 1 thread: 2 slots: the model predicts no slow-down from them.

For each: the prediction with the concurrency model and without it (the stage alone on the
cluster), against the measured mean per call (the first call, which ships the function, left
out). The machine is shared (2 cores): the report states its load.

    PYTHONPATH=. python -m benchmarks.dask_concurrency [--heavy-s 1.0] [--runs 4] [--report [FILE]]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._report import add_report_option, markdown_table  # noqa: E402

SAMPLE = REPO / "samples" / "concurrent_flow.py"
DEFAULT_REPORT = REPO / "benchmarks" / "reports" / "dask-concurrency.md"
SHAPES = ((1, 2), (2, 1))  # (workers, threads each)
MOVED, ALREADY = "pipeline_b.heavy", "pipeline_a.heavy"


def log(msg: str) -> None:
    print(f"dask_concurrency: {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wp(work: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`wiredprof ARGS` in `work`; a failure ends the benchmark with its output."""
    log("$ wiredprof " + " ".join(args))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "wiredprof", *args], cwd=work, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"wiredprof {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def steady_mean(profile: dict[str, Any], name: str) -> tuple[float, int]:
    """Mean seconds per call of `name` in the timeline, the first call (shipping the function) left out."""
    spans = sorted((t for t in profile["timeline"] if f"{t['pipeline']}.{t['stage']}" == name
                    and not t.get("error") and not t.get("sampled")), key=lambda t: t["start_s"])[1:]
    return (statistics.fmean(t["wall_s"] for t in spans) if spans else 0.0), len(spans)


def predictions(work: Path) -> dict[str, Any]:
    """The planner's prediction for MOVED on the cluster, with the model and with the stage alone there."""
    from wiredprof.placement.capacity import capacity_from_probe
    from wiredprof.placement.model import predict
    from wiredprof.profile import load_profile
    from wiredprof.remote.probe import load_probe

    profile = load_profile(work / "before.json")
    probe = load_probe(work / ".wiredprof" / "hosts", "cluster")
    assert probe is not None
    host = capacity_from_probe(probe)
    moved = profile.stage(MOVED)
    with_model = predict(moved, host, profile)
    alone = predict(moved, host, replace(profile, stages=[s for s in profile.stages if s.host != "cluster"]))
    return {"with_model_s": with_model.seconds, "alone_s": alone.seconds, "contention": with_model.contention,
            "side_by_side": with_model.side_by_side, "slots": host.slots, "cores": host.cores,
            "low_s": with_model.low_s, "high_s": with_model.high_s}


def one_shape(root: Path, workers: int, threads: int, s: argparse.Namespace) -> dict[str, Any]:
    from wiredprof.testing.localcluster import start_local_cluster

    work = root / f"w{workers}x{threads}"
    work.mkdir()
    flow = [str(SAMPLE), "--runs", str(s.runs), "--no-call-tree", "-q"]
    flow_args = ["--", "--heavy-s", str(s.heavy_s), "--pause-s", str(s.pause_s), "--seconds", "900"]
    load0 = loadavg()
    cluster = start_local_cluster(workers=workers, nthreads=threads)
    try:
        (work / "wiredprof.toml").write_text(
            f'[hosts.cluster]\ndask = "{cluster.address}"\n\n[offload."{ALREADY}"]\nhost = "cluster"\ntimeout_s = 600\n')
        wp(work, "hosts", "check", "cluster", "--json")
        wp(work, "analyze", *flow, "-o", "before.json", *flow_args)
        predicted = predictions(work)
        wp(work, "offload", "--stage", MOVED, "--host", "cluster", str(SAMPLE))
        wp(work, "analyze", *flow, "-o", "after.json", *flow_args)
    finally:
        cluster.stop()
    before = json.loads((work / "before.json").read_text())
    after = json.loads((work / "after.json").read_text())
    measured, n = steady_mean(after, MOVED)
    out = {
        "workers": workers, "threads": threads, "loadavg_start": load0, "loadavg_end": loadavg(),
        "here_s": next(x["mean_s"] for x in before["stages"] if f"{x['pipeline']}.{x['stage']}" == MOVED),
        "already_there_s": steady_mean(before, ALREADY)[0],
        "measured_s": measured, "measured_calls": n, **predicted,
        "workers_used": next((x.get("workers", []) for x in after["stages"]
                              if f"{x['pipeline']}.{x['stage']}" == MOVED), []),
    }
    for key in ("with_model", "alone"):
        out[f"{key}_error_pct"] = 100.0 * (out[f"{key}_s"] - measured) / measured if measured else None
    log(f"{workers} worker(s) x {threads} thread(s): slots {out['slots']}, measured {measured:.2f} s, predicted "
        f"{out['with_model_s']:.2f} s with the model ({out['with_model_error_pct']:+.1f} %), "
        f"{out['alone_s']:.2f} s alone ({out['alone_error_pct']:+.1f} %)")
    return out


def report(result: dict[str, Any]) -> str:
    rows = [[f"{r['workers']} x {r['threads']}", r["slots"], f"{r['side_by_side']:.2f}", f"x{r['contention']:.2f}",
             f"{r['here_s']:.2f} s", f"{r['alone_s']:.2f} s ({r['alone_error_pct']:+.1f} %)",
             f"{r['with_model_s']:.2f} s ({r['with_model_error_pct']:+.1f} %)",
             f"{r['measured_s']:.2f} s ({r['measured_calls']} calls)", f"{r['loadavg_start'][0]:.2f}"]
            for r in result["shapes"]]
    m = result["machine"]
    return "\n".join([
        "# The planner's concurrency on a Dask cluster",
        "",
        f"Written by `{' '.join(['PYTHONPATH=$PWD python -m benchmarks.dask_concurrency', *result['argv']])}` on "
        f"{result['started_at']} (regenerate it with that command; not edited by hand).",
        "",
        f"- **Machine:** {m['cpus']} CPUs shared with other work; load average {result['loadavg_start']} at the "
        f"start, {result['loadavg_end']} at the end (1, 5, 15 min).",
        f"- **Flow:** `samples/concurrent_flow.py`: pipeline_a and pipeline_b each call `heavy` ({result['heavy_s']} s "
        f"of CPU here, then a {result['pause_s']} s pause), `--runs {result['runs']}`. `{ALREADY}` runs on the "
        f"cluster in both profiles; `{MOVED}` runs here in the first and is then offloaded to the cluster.",
        "- **Cluster:** a real `dask scheduler` and workers on 127.0.0.1 (`wiredprof.testing.localcluster`), "
        "on this machine's cores.",
        "",
        markdown_table(["workers x threads", "slots", "other calls in flight", "slow-down", f"{MOVED} here",
                        "predicted alone", "predicted with the model", "measured (first call left out)", "load avg"],
                       rows),
        "",
        "*Predicted alone*: the prediction without the calls already on the cluster (the model before it "
        "counted them); *with the model*: calls of other stages in flight share the cluster's slots (one per "
        "worker process, since its threads share one GIL). Errors are against the measured mean.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dask_concurrency", description=__doc__.split("\n\n")[0])
    ap.add_argument("--heavy-s", type=float, default=1.0, help="CPU seconds of one heavy call here (default 1.0)")
    ap.add_argument("--pause-s", type=float, default=0.1, help="pause after each heavy call (default 0.1)")
    ap.add_argument("--runs", type=int, default=4, help="cycles per pipeline per analyze (default 4)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_report_option(ap, DEFAULT_REPORT)
    s = ap.parse_args(argv)
    if s.heavy_s <= 0 or s.pause_s < 0 or s.runs < 2:
        ap.error("--heavy-s must be > 0, --pause-s >= 0, --runs >= 2")
    result: dict[str, Any] = {
        "argv": [a for a in argv if a != "--report" and not a.endswith(".md")],
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()}, "loadavg_start": loadavg(),
        "heavy_s": s.heavy_s, "pause_s": s.pause_s, "runs": s.runs,
    }
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wiredprof-dask-concurrency-") as root:
        result["shapes"] = [one_shape(Path(root), w, t, s) for w, t in SHAPES]
    result["loadavg_end"] = loadavg()
    result["minutes"] = round((time.monotonic() - t0) / 60, 1)
    if s.json:
        print(json.dumps(result, indent=2))
    text = report(result)
    if s.report is not None:
        s.report.write_text(text)
        log(f"report written to {s.report}")
    elif not s.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
