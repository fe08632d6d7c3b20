"""The profile as tables a person reads at a glance (tabulate)."""
from __future__ import annotations

from tabulate import tabulate

from wiredprof.analysis import classify, utilisation
from wiredprof.profile import Profile
from wiredprof.reports.base import OFFLOAD_EVENTS, no_call_tree_reason, offload_counts, offloaded_stages

__all__ = ["render_text", "fmt_s", "fmt_pct"]

_TREE_LINES = 45


def fmt_s(seconds: float) -> str:
    """A duration with a unit a person reads without counting zeros."""
    if seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 100:
        return f"{seconds:.3g} s"
    return f"{seconds:.0f} s"


NOT_MEASURABLE = "n/m"


def fmt_pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def _header(p: Profile) -> str:
    limits = []
    if p.limits.get("duration_s"):
        limits.append(f"--duration {p.limits['duration_s']:g}")
    if p.limits.get("runs"):
        limits.append(f"--runs {p.limits['runs']}")
    bound = f", {' '.join(limits)}" if limits else ""
    startup = f" (start-up {fmt_s(p.startup_s or 0.0)}, before the first launch_flow)" if shows_startup(p) else ""
    return f"wiredprof: {p.flow}: {fmt_s(p.wall_s)} in {p.mode} mode{startup}{bound}, status {p.status}"


STARTUP_SHOWN_S = 1.0  # a start-up this long or longer is named in the header (always in the JSON)


def shows_startup(p: Profile) -> bool:
    """The flow spent long enough starting up (spawning pool workers, say) to name it beside the wall time."""
    return p.startup_s is not None and p.startup_s >= STARTUP_SHOWN_S


def _several_flows(p: Profile) -> bool:
    return len(p.flows) > 1


def _flow_cell(several: bool, number: int) -> list[object]:
    return [f"#{number}"] if several else []


def _flows_table(p: Profile) -> str:
    """The script's `launch_flow` calls, one row each (shown when there are several)."""
    rows = [[f"#{f.number}", fmt_s(f.start_s), fmt_s(f.wall_s) + ("" if f.ended else " (running)"), f.mode,
             ", ".join(f.pipelines)] for f in p.flows]
    return str(tabulate(rows, headers=["flow", "started", "ran", "mode", "pipelines"],
                        colalign=("left", "right", "right", "left", "left")))


def _pipelines_table(p: Profile) -> str:
    several = _several_flows(p)
    rows = [
        _flow_cell(several, pl.flow)
        + [pl.name, fmt_s(pl.wall_s), pl.runs, fmt_pct(pl.share), fmt_pct(utilisation(pl, p)), fmt_s(pl.cpu_s),
           fmt_s(pl.framework_cpu_s), pl.errors]
        for pl in sorted(p.pipelines, key=lambda x: (x.flow, -x.wall_s))
    ]
    return str(tabulate(
        rows,
        headers=(["flow"] if several else []) + ["pipeline", "cycle", "cycles", "share", "busy", "stage cpu",
                                                 "framework cpu", "errors"],
        colalign=(("left",) if several else ()) + ("left", "right", "right", "right", "right", "right", "right",
                                                   "right"),
    ))


def _stages_table(p: Profile) -> str:
    rows = []
    several = _several_flows(p)
    for s in p.stages:
        b = classify(s)
        rows.append(_flow_cell(several, s.flow) + [
            s.name,
            s.calls if not s.sampled_calls else f"{s.calls}+{s.sampled_calls}s",
            fmt_s(s.total_s),
            fmt_s(s.mean_s),
            fmt_s(s.p95_s),
            fmt_s(s.cpu_s),
            fmt_s(s.wait_s),
            fmt_s(s.gil_wait_s),
            NOT_MEASURABLE if s.cpu_queue_s is None else fmt_s(s.cpu_queue_s),
            b.bound if s.calls else "-",
            s.errors,
            s.host,
        ])
    return str(tabulate(
        rows,
        headers=(["flow"] if several else []) + ["stage", "calls", "total", "mean", "p95", "cpu", "wait", "gil wait",
                                                 "core wait", "bound", "errors", "host"],
        colalign=(("left",) if several else ()) + ("left",) + ("right",) * 10 + ("left",),
    ))


def _offload_table(p: Profile) -> list[str]:
    """Retries, local runs, timeouts and link losses of each offloaded stage (nothing when none is)."""
    stages = offloaded_stages(p)
    if not stages:
        return []
    rows = [[s.name, s.host, *offload_counts(s)] for s in stages]
    headers = ["offloaded stage", "host", *(label for label, _ in OFFLOAD_EVENTS.values())]
    table = tabulate(rows, headers=headers, colalign=("left", "left") + ("right",) * len(OFFLOAD_EVENTS))
    out = [str(table), "retries: re-sent, the host had not started the call; retries after start: "
           "idempotent stages only", ""]
    workers = [[s.name, w.worker, w.calls, fmt_s(w.total_s), fmt_s(w.remote_s)] for s in stages for w in s.workers]
    if workers:
        out += [str(tabulate(workers, headers=["offloaded stage", "worker", "calls", "total", "on the worker"],
                             colalign=("left", "left", "right", "right", "right"))),
                "total: the calls' time as seen here; on the worker: running the stage there", ""]
    return out


def _tree_body(text: str) -> list[str]:
    """pyinstrument's tree without its banner (which repeats what the report says)."""
    lines = text.rstrip("\n").splitlines()
    start = next((i + 1 for i, ln in enumerate(lines) if ln.startswith("Profile at")), 0)
    return [ln for ln in lines[start:] if ln.strip()]


def render_text(p: Profile, tree_lines: int = _TREE_LINES) -> str:
    """Header, pipelines, stages, the bottleneck line, its call tree, errors and notes."""
    out = [_header(p), ""]
    if _several_flows(p):
        out += [f"{len(p.flows)} flows (launch_flow calls) in this script, kept apart:", _flows_table(p), ""]
    out += [_pipelines_table(p), "", _stages_table(p), ""]
    if any(s.sampled_calls for s in p.stages):
        out.append("calls N+Ms: N timed calls, M more sampled for call stacks (kept out of the timings)")
    out.append("busy: the share of the run a pipeline spent in its cycles; wait: wall minus CPU; of it, "
               "gil wait: blocked on the GIL while other threads ran; core wait: ready but queued for a free core")
    if any(s.cpu_queue_s is None and s.calls for s in p.stages):
        out.append(f"core wait {NOT_MEASURABLE}: not measurable, the stage's calls are shorter than the thread-state "
                   "sampler's ticks")
    out.append("")
    out.extend(_offload_table(p))
    b = p.bottleneck
    if b is None:
        out.append("Bottleneck: none found (no stage finished a call)")
    else:
        out.append(f"Bottleneck: {b.reason}")
        tree = p.call_tree(f"{b.pipeline}.{b.stage}")
        out.append("")
        if tree is None:
            out.append(f"No call stacks of {b.pipeline}.{b.stage}: {no_call_tree_reason(p, b.pipeline, b.stage)}")
        else:
            calls = ", ".join(f"#{n}" for n in tree.sampled_calls)
            out.append(
                f"Call stacks of {tree.name} (pyinstrument, {fmt_s(tree.duration_s)} sampled over call {calls}; "
                "those calls are kept out of the timings above):"
            )
            body = _tree_body(tree.text)
            out.extend("  " + ln for ln in body[:tree_lines])
            if len(body) > tree_lines:
                out.append(f"  ... {len(body) - tree_lines} more lines (wiredprof show PROFILE --html FILE for all)")
    failing = [s for s in p.stages if s.errors]
    if failing or p.error is not None:
        out.append("")
        out.append("Errors:")
        for s in failing:
            last = s.last_error.one_line() if s.last_error else "?"
            out.append(f"  {s.name}: {s.errors} failed call(s); last: {last}")
            if s.last_error and s.last_error.traceback:
                out.extend("    " + ln for ln in s.last_error.traceback.rstrip().splitlines())
        if p.error is not None and not failing:
            out.append(f"  the flow: {p.error.one_line()}")
            out.extend("    " + ln for ln in p.error.traceback.rstrip().splitlines())
    if p.missing:
        out.append("")
        out.append("Missing figures:")
        out.extend(f"  - {what}: {why}" for what, why in p.missing.items())
    if p.notes:
        out.append("")
        out.append("Notes:")
        out.extend(f"  - {n}" for n in p.notes)
    return "\n".join(out) + "\n"
