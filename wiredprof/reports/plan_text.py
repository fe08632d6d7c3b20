"""A plan as a table a person reads: best move first, and why the others are not worth it."""
from __future__ import annotations

from tabulate import tabulate

from wiredprof.placement.model import Plan
from wiredprof.reports.text import fmt_s

__all__ = ["render_plan"]


def render_plan(plan: Plan) -> str:
    """The recommended moves, then the rest with their reason."""
    rows = []
    for r in plan.recommendations:
        rows.append([
            "yes" if r.recommended else "no",
            r.stage,
            r.host,
            fmt_s(r.current_s),
            fmt_s(r.predicted_s),
            f"{fmt_s(r.predicted_low_s)}-{fmt_s(r.predicted_high_s)}" if r.predicted_high_s > 0 else "-",
            f"{r.stage_speedup:.2f}x" if r.predicted_s > 0 else "-",
            f"{fmt_s(r.pipeline_cycle_s)} -> {fmt_s(r.predicted_pipeline_cycle_s)}",
            f"{fmt_s(r.flow_cycle_s)} -> {fmt_s(r.predicted_flow_cycle_s)}",
        ])
    hosts = ", ".join(
        f"{h.name} (x{h.cpu_speed_ratio:.2f} CPU" + (f" ±{h.ratio_spread:.0%}" if h.ratio_spread else "")
        + (", noisy" if h.noisy else "") + f", {h.rtt_s * 1e3:.1f} ms RTT"
        + (f", {h.cores} cores, {h.busy_cores:.1f} busy" if h.cores else "")
        + (", this same machine" if h.same_machine else "")
        + (f", probed {h.probed_at}" if h.probed_at else "") + ")"
        for h in plan.hosts
    )
    out = [
        f"plan for {plan.flow or plan.profile}: hosts {hosts or 'none'}",
        "",
        tabulate(rows, headers=["move", "stage", "host", "now", "there", "range", "stage", "pipeline cycle", "flow cycle"],
                 colalign=("left", "left", "left", "right", "right", "right", "right", "right", "right")),
        "",
    ]
    best = plan.best()
    if best is None:
        out.append("No move is worth it:")
    else:
        out.append(f"Recommended: wiredprof offload --stage {best.stage} --host {best.host}")
        if best.start_s:
            out.append(f"  (plus a one-off {fmt_s(best.start_s)} to connect and start the worker)")
        out.append("Why:")
    seen = set()
    for r in plan.recommendations:
        key = (r.stage, r.reason)
        if key in seen:
            continue
        seen.add(key)
        out.append(f"  {r.stage} -> {r.host}: {r.reason}")
    return "\n".join(out) + "\n"
