"""Are wiredprof's decisions right? analyze -> plan -> offload -> analyze on every sample flow, twice.

For each flow of `samples/catalog.py` (and any `samples/*_flow.py` it does not list), in a
project of its own whose host B is a throwaway OpenSSH sshd on 127.0.0.1 (this machine:
B shares its cores with the flow, as in the README's tour), every step a wiredprof command:

1. `wiredprof analyze FLOW --runs N` -> the bottleneck verdict;
2. `wiredprof plan --json` (the first plan of a project measures B itself);
3. the stage to move: the catalogue's, else the plan's recommendation, else its best row
   that `offload` accepts; `wiredprof offload --stage S --host B`;
4. `wiredprof analyze` again with the plan applied: S's measured time per call on B
   (its first call, which connects and starts the worker, left out), against the
   prediction and its range; then `wiredprof offload --remove S`.

Then the reference case on the simulated 4x host B (`benchmarks/reference.py`, two
repeats at a small scale), for the planner's error there.

Targets (issue 9): every flow profiled without error; the same verdict in both runs;
prediction error within 10 % for the reference sample on loopback B and on the simulated
4x B in every repeat; within 30 % or "not recommended" for a call-back-dominated stage.

    PYTHONPATH=$PWD python -m benchmarks.decisions [--repeat 2] [--only NAME ...]
        [--simulated-scale 0.1 | --no-simulated] [--json] [--report [PATH]]

`--report` writes benchmarks/reports/decisions.md (or PATH); without it nothing is written.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import add_report_option, markdown_table  # noqa: E402
from benchmarks.reference import (  # noqa: E402
    STAGE as REFERENCE_STAGE,
    Settings,
    Step,
    StepFailed,
    loadavg,
    machine_info,
    run_step,
    stage_of,
)
from samples.catalog import SampleFlow, sample_flows  # noqa: E402
from wiredprof.config import HostEntry, ProjectConfig  # noqa: E402

SCHEMA = "wiredprof.bench.decisions/1"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = REPO / "benchmarks" / "reports" / "decisions.md"
TARGET_REFERENCE_PCT = 10.0
TARGET_CALLBACK_PCT = 30.0


def log(msg: str) -> None:
    print(f"decisions: {msg}", file=sys.stderr, flush=True)


def verdict(profile: dict[str, Any]) -> str:
    """The bottleneck verdict of a profile in a few words: stage and bound, or none."""
    b = profile.get("bottleneck")
    if not b:
        return "none"
    if b.get("candidates"):  # a tie: the same two stages in any order are the same verdict
        return f"no clear bottleneck: {' or '.join(sorted(b['candidates']))} ({b.get('bound', '?')})"
    return f"{b['pipeline']}.{b['stage']} ({b.get('bound', '?')})"


def measured_on_host(profile: dict[str, Any], name: str) -> tuple[float | None, int]:
    """Mean time per call of `name` after its first call (connect and start), and the calls used."""
    spans = sorted((t for t in profile.get("timeline", []) if f"{t['pipeline']}.{t['stage']}" == name
                    and not t.get("sampled") and not t.get("error")), key=lambda t: t["start_s"])
    if len(spans) > 1:
        return statistics.fmean(t["wall_s"] for t in spans[1:]), len(spans) - 1
    stage = stage_of(profile, name)
    return (stage["mean_s"] if stage and stage.get("calls") else None), len(spans)


def choose_stage(flow: SampleFlow, plan: dict[str, Any]) -> tuple[str, str]:
    """The stage to offload and why that one."""
    recs = plan.get("recommendations", [])
    if flow.stage:
        return flow.stage, "the catalogue's"
    best = next((r for r in recs if r.get("recommended")), None)
    if best is not None:
        return best["stage"], "recommended"
    top = next((r for r in recs if r.get("offloadable", True)), None)
    return (top["stage"], "best offloadable row, not recommended") if top else ("", "nothing offloadable")


def flow_args(flow: SampleFlow, blocks: dict[str, int]) -> list[str]:
    args = list(flow.args)
    if flow.name in blocks:
        args += ["--core-blocks", str(blocks[flow.name])]
    return args


def analyze_args(flow: SampleFlow, out: str, flow_log: str, blocks: dict[str, int]) -> list[str]:
    return ["analyze", str(flow.path), "--runs", str(flow.runs), "--duration", f"{flow.duration_s:g}",
            "--no-call-tree", "-q", "--flow-log", flow_log, "-o", out, "--", *flow_args(flow, blocks)]


def one_run(flow: SampleFlow, k: int, root: Path, inventory: HostEntry, blocks: dict[str, int]) -> dict[str, Any]:
    """analyze -> plan -> offload -> analyze -> offload --remove, in a project of its own."""
    work = root / f"{flow.name}-{k + 1}"
    work.mkdir(parents=True)
    ProjectConfig(work / "wiredprof.toml").add_host(inventory)
    steps: list[Step] = []
    out: dict[str, Any] = {"run": k + 1, "flow": flow.name, "loadavg_start": loadavg(), "errors": []}
    timeout = 4 * flow.duration_s + 180
    try:
        run_step(work, analyze_args(flow, "before.json", "before.log", blocks), runner=None, timeout=timeout,
                 steps=steps)
        before = json.loads((work / "before.json").read_text())
        out["status_before"] = before.get("status")
        out["verdict_before"] = verdict(before)
        plan_step = run_step(work, ["plan", "before.json", "--json"], runner=None, timeout=180, steps=steps)
        plan = json.loads(plan_step.stdout)
        out["probed_by_plan"] = "no probe yet" in plan_step.stderr
        out["host"] = next((h for h in plan.get("hosts", []) if h["name"] == "B"), {})
        out["recommended_stages"] = [r["stage"] for r in plan["recommendations"] if r.get("recommended")]
        out["builtin_recommended"] = [r["stage"] for r in plan["recommendations"]
                                      if r.get("recommended") and not r.get("offloadable", True)]
        stage, why = choose_stage(flow, plan)
        out["stage"], out["stage_choice"] = stage, why
        if not stage:
            return out
        rec = next((r for r in plan["recommendations"] if r["stage"] == stage and r["host"] == "B"), None)
        out["recommendation"] = rec
        if rec is None or not rec.get("offloadable", True):
            out["errors"].append(f"{stage}: not offloadable ({rec and rec.get('reason')})")
            return out
        run_step(work, ["offload", "--stage", stage, "--host", "B", str(flow.path)], runner=None, timeout=180,
                 steps=steps)
        try:
            run_step(work, analyze_args(flow, "after.json", "after.log", blocks), runner=None, timeout=timeout,
                     steps=steps)
        finally:
            run_step(work, ["offload", "--remove", stage], runner=None, timeout=60, check=False, steps=steps)
        after = json.loads((work / "after.json").read_text())
        out["status_after"] = after.get("status")
        out["verdict_after"] = verdict(after)
        measured, calls = measured_on_host(after, stage)
        out["measured_s"], out["measured_calls"] = measured, calls
        s_after = stage_of(after, stage) or {}
        out["host_after"] = s_after.get("host")
        out["callbacks_after"] = s_after.get("callbacks")
        if measured and rec:
            predicted = rec["predicted_s"]
            out["error_pct"] = 100.0 * (predicted - measured) / measured
            out["hit"] = rec["predicted_low_s"] <= measured <= rec["predicted_high_s"]
            faster = measured < rec["current_s"] * 0.98
            out["held"] = bool(rec["recommended"]) == faster
    except StepFailed as exc:
        out["errors"].append(str(exc))
    finally:
        out["steps"] = [{"cmd": "wiredprof " + shlex.join(st.args), "exit": st.returncode,
                         "seconds": round(st.seconds, 2)} for st in steps]
        out["loadavg_end"] = loadavg()
        out["workdir"] = str(work)
    return out


def flow_targets(flow: SampleFlow, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = all(not r["errors"] and r.get("status_before") == "ok" and r.get("status_after", "ok") == "ok"
             for r in runs)
    verdicts = {r.get("verdict_before") for r in runs}
    out: dict[str, Any] = {"profiled_ok": ok, "same_verdict": len(verdicts) == 1,
                           "no_builtin_recommended": not any(r.get("builtin_recommended") for r in runs)}
    errors = [r.get("error_pct") for r in runs]
    if flow.reference:
        out["prediction_met"] = all(e is not None and abs(e) <= TARGET_REFERENCE_PCT for e in errors)
    if flow.callback_dominated:
        out["prediction_met"] = all(
            (r.get("recommendation") or {}).get("recommended") is False
            or (r.get("error_pct") is not None and abs(r["error_pct"]) <= TARGET_CALLBACK_PCT)
            for r in runs)
        out["within_30_pct"] = all(e is not None and abs(e) <= TARGET_CALLBACK_PCT for e in errors)
    return out


def simulated(scale: float, repeat: int) -> dict[str, Any]:
    """The reference case on the simulated 4x host B (benchmarks/reference.py): prediction errors."""
    from benchmarks.reference import run as reference_run
    from benchmarks.simhosts import SimHostsUnavailable

    s = Settings(scale=scale, repeat=repeat, processes=True, runs=3, quick=False, memory_variant=False)
    try:
        result = reference_run(s, ["--scale", f"{scale:g}", "--repeat", str(repeat)])
    except SimHostsUnavailable as exc:
        return {"skipped": f"cannot simulate hosts A and B here: {exc}"}
    except StepFailed as exc:
        return {"failed": str(exc)}
    reps = []
    for r in result["repeats"]:
        rec = r.get("recommendation") or {}
        measured = r.get("stage_on_b_steady_s")
        reps.append({
            "repeat": r["repeat"], "raw_speed_ratio": r.get("raw_speed_ratio"),
            "current_s": r.get("stage_on_a_s"), "predicted_s": r.get("predicted_stage_s"),
            "predicted_low_s": rec.get("predicted_low_s"), "predicted_high_s": rec.get("predicted_high_s"),
            "measured_s": measured, "error_pct": r.get("prediction_error_pct"),
            "hit": bool(rec.get("predicted_low_s") is not None and measured is not None
                        and rec["predicted_low_s"] <= measured <= rec["predicted_high_s"]),
            "recommended": rec.get("recommended"), "probe": r.get("probe"),
        })
    met = bool(reps) and all(x["error_pct"] is not None and abs(x["error_pct"]) <= TARGET_REFERENCE_PCT for x in reps)
    return {"scale": scale, "repeats": reps, "prediction_met": met, "stage": REFERENCE_STAGE,
            "elapsed_s": result.get("elapsed_s")}


def size_core_logic(flows: list[SampleFlow]) -> dict[str, int]:
    """`--core-blocks` per flow that asks for it: the same work before and after."""
    from samples._workload import calibrate_blocks

    out = {}
    for flow in flows:
        if flow.core_cpu_s > 0:
            out[flow.name] = min((calibrate_blocks(flow.core_cpu_s, probe_cpu_seconds=0.1) for _ in range(3)),
                                 key=lambda c: c.seconds_per_block).blocks
    return out


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    from wiredprof.testing.localsshd import SshdUnavailable, start_local_sshd

    t0 = time.perf_counter()
    flows = [f for f in sample_flows() if not args.only or f.name in args.only]
    result: dict[str, Any] = {"schema": SCHEMA, "argv": argv, "repeat": args.repeat, "machine": machine_info(),
                              "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    blocks = size_core_logic(flows)
    result["core_blocks"] = blocks
    root = Path(tempfile.mkdtemp(prefix="wiredprof-decisions-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        sshd = start_local_sshd()
    except SshdUnavailable as exc:
        raise SystemExit(f"decisions: host B needs OpenSSH's sshd (apt-get install openssh-server): {exc}")
    try:
        inventory = sshd.host_entry("B", python=sys.executable)
        per_flow = []
        for flow in flows:
            runs = []
            for k in range(args.repeat):
                log(f"{flow.name} run {k + 1}/{args.repeat} (load average {loadavg()})")
                r = one_run(flow, k, root, inventory, blocks)
                log(f"{flow.name} run {k + 1}: verdict {r.get('verdict_before')}; {r.get('stage')}: "
                    f"predicted {_s((r.get('recommendation') or {}).get('predicted_s'))}, measured "
                    f"{_s(r.get('measured_s'))} ({_pct(r.get('error_pct'))}); errors {r['errors'] or 'none'}")
                runs.append(r)
            per_flow.append({"flow": flow.name, "file": flow.file, "args": flow_args(flow, blocks),
                             "catalogued": flow.catalogued, "reference": flow.reference,
                             "callback_dominated": flow.callback_dominated, "runs": runs,
                             "targets": flow_targets(flow, runs)})
        result["flows"] = per_flow
    finally:
        sshd.stop()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if not args.no_simulated:
        log(f"the reference case on the simulated 4x host B (scale {args.simulated_scale:g}, 2 repeats)")
        result["simulated"] = simulated(args.simulated_scale, 2)
    result["elapsed_s"] = time.perf_counter() - t0
    result["loadavg_end"] = loadavg()
    return result


# --------------------------------------------------------------------------- the report


def _s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f} %"


def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("met" if flag else "**missed**")


def render_report(result: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    m = result["machine"]
    add("# Decisions: analyze -> plan -> offload -> analyze on every sample flow")
    add("")
    add(f"Generated by `python -m benchmarks.decisions {' '.join(result['argv'])}` on "
        f"{result['started_at']} ({m.get('cpus', '?')} CPUs, load average {m.get('loadavg_start')} at the start, "
        f"{result.get('loadavg_end')} at the end; {result['elapsed_s'] / 60:.1f} min). Host B is a throwaway "
        "OpenSSH sshd on 127.0.0.1: this same machine, so B's cores are shared with the flow (and with "
        "whatever else runs here). Each flow ran twice, each run in a project of its own (so the first "
        "`wiredprof plan` of each run measured B itself). Measured = the offloaded stage's mean time per "
        "call on B after its first call (which connects and starts the worker). A measurement inside "
        "the predicted range is a hit; the recommendation held when a recommended move made the stage "
        "faster, or a move not recommended did not.")
    add("")
    runs = []
    for f in result["flows"]:
        for r in f["runs"]:
            rec = r.get("recommendation") or {}
            rng = (f"{_s(rec.get('predicted_s'))} ({_s(rec.get('predicted_low_s'))}-{_s(rec.get('predicted_high_s'))})"
                   if rec else "-")
            runs.append([f["flow"], r["run"], r.get("verdict_before", "-"), r.get("stage") or "-",
                         "yes" if rec.get("recommended") else ("no" if rec else "-"), _s(rec.get("current_s")),
                         rng, _s(r.get("measured_s")), _pct(r.get("error_pct")),
                         "-" if "hit" not in r else ("yes" if r["hit"] else "no"),
                         "-" if "held" not in r else ("yes" if r["held"] else "no")])
    add(markdown_table(["flow", "run", "verdict (bottleneck)", "stage moved", "recommended", "now", "predicted (range)",
                        "measured", "error", "hit", "held"], runs))
    add("")
    add("Targets per flow:")
    add("")
    per_flow = []
    for f in result["flows"]:
        t = f["targets"]
        target = ("within ±10 %" if f["reference"] else
                  "within ±30 % or not recommended" if f["callback_dominated"] else "none")
        per_flow.append([f"{f['flow']}{'' if f['catalogued'] else ' (not in samples/catalog.py)'}",
                         _ok(t["profiled_ok"]), _ok(t["same_verdict"]), _ok(t["no_builtin_recommended"]),
                         f"{target}: {_ok(t.get('prediction_met')) if 'prediction_met' in t else '-'}"])
    add(markdown_table(["flow", "profiled without error", "same verdict both runs", "no built-in stage recommended",
                        "prediction target"], per_flow))
    add("")
    add("Why, per run (the planner's reason for the stage moved):")
    add("")
    for f in result["flows"]:
        for r in f["runs"]:
            rec = r.get("recommendation") or {}
            if rec:
                add(f"- {f['flow']} run {r['run']}, {r['stage']} ({r.get('stage_choice')}): {rec.get('reason')}")
            for e in r["errors"]:
                add(f"- {f['flow']} run {r['run']}: error: {e}")
    hosts = [r.get("host") for f in result["flows"] for r in f["runs"] if r.get("host")]
    if hosts:
        add("")
        add("Host B as each run's probe saw it: " + "; ".join(
            f"x{h['cpu_speed_ratio']:.2f} ±{h.get('ratio_spread', 0):.0%}{' noisy' if h.get('noisy') else ''}, "
            f"{h.get('busy_cores', 0):.2f} of {h.get('cores')} cores busy"
            + (", same machine" if h.get("same_machine") else "") for h in hosts) + ".")
    sim = result.get("simulated")
    add("")
    add("## The reference case on the simulated 4x host B")
    add("")
    if sim is None:
        add("Not run (`--no-simulated`).")
    elif "skipped" in sim or "failed" in sim:
        add(f"Not measured: {sim.get('skipped') or sim.get('failed')}.")
    else:
        add(f"`benchmarks/reference.py` at scale {sim['scale']:g}, {len(sim['repeats'])} repeats (host A a cgroup "
            "4x slower than B, B a real sshd in its own network namespace; see reports/reference.md).")
        add("")
        add(markdown_table(
            ["repeat", "raw ratio", "on A", "predicted (range)", "measured on B", "error", "hit"],
            [[x["repeat"], f"{x['raw_speed_ratio'] or 0:.2f}x", _s(x["current_s"]),
              f"{_s(x['predicted_s'])} ({_s(x['predicted_low_s'])}-{_s(x['predicted_high_s'])})", _s(x["measured_s"]),
              _pct(x["error_pct"]), "yes" if x["hit"] else "no"] for x in sim["repeats"]]))
        add("")
        add(f"Target: within ±10 % in every repeat: {_ok(sim['prediction_met'])}.")
    add("")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.decisions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="runs per flow (default 2)")
    ap.add_argument("--only", action="append", metavar="NAME", help="only this flow of samples/catalog.py")
    ap.add_argument("--simulated-scale", type=float, default=0.1,
                    help="scale of the reference case on the simulated 4x B (default 0.1)")
    ap.add_argument("--no-simulated", action="store_true", help="leave out the simulated 4x B")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_report_option(ap, DEFAULT_REPORT)
    ap.add_argument("--keep", type=Path, default=None, help="keep the work directories here")
    args = ap.parse_args(argv)
    if args.repeat < 1 or not args.simulated_scale > 0:
        ap.error("--repeat must be >= 1 and --simulated-scale > 0")
    known = {f.name for f in sample_flows()}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        ap.error(f"no sample flow {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    result = run(args, argv)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(render_report(result))
        log(f"wrote {args.report}")
    if args.json:
        slim = json.loads(json.dumps(result, default=str))
        print(json.dumps(slim, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
