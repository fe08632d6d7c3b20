"""What a flow's stages need on a host, shown and provided: shared by `hosts` and `offload`."""
from __future__ import annotations

import json
from collections.abc import Iterable

import click
from tabulate import tabulate

from wiredprof.config import ProjectConfig
from wiredprof.discovery import discover_stages
from wiredprof.errors import UsageError
from wiredprof.offload.entries import read_offloads
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.hostenv import Comparison
from wiredprof.remote.provision import ProvisionResult, provision
from wiredprof.remote.requirements import StageNeeds, merge_needs
from wiredprof.stages import StageName, resolve_stage

__all__ = ["flow_stages", "needs_of", "needs_report", "provision_and_record", "say_provisioned", "refusal"]


def flow_stages(flow: str, stage: str | None, host: str, config: ProjectConfig) -> tuple[list[StageName], list[StageName]]:
    """(every stage of `flow`, the ones asked about): `stage`, else those offloaded to `host`, else all
    stages built from a callable of the user's."""
    stages = discover_stages(flow)
    if not stages:
        raise UsageError(f"{flow}: no wiredflow stage found without running it; what a stage needs is found "
                         "for wiredflow flows (a plain-Python flow's stages exist only while it runs)")
    if stage:
        return stages, [resolve_stage(stage, stages, where=flow)]
    offloaded = {name for name, entry in read_offloads(config).items() if entry.host == host}
    chosen = [s for s in stages if s.full in offloaded] or [s for s in stages if not s.builtin]
    return stages, chosen


def needs_of(stages: Iterable[StageName]) -> StageNeeds:
    """The union of what `stages` need on another host; a stage whose needs are unknown is refused."""
    chosen = [s for s in stages if not s.builtin]
    parts = []
    for s in chosen:
        data = json.loads(s.needs) if s.needs else {}
        if "error" in data:
            raise UsageError(f"{s.full}: cannot tell what it needs on another host: {data['error']}")
        parts.append(StageNeeds.from_json(data))
    needs = merge_needs(parts)
    needs.check_known(", ".join(s.full for s in chosen) or "the stage")
    return needs


def needs_report(comparison: Comparison, stages: list[StageName]) -> str:
    """The per-distribution table, with B's Python and platform, and what to do."""
    inv = comparison.inventory
    names = ", ".join(s.full for s in stages if not s.builtin) or "no stage"
    glibc = f", glibc {inv.glibc}" if inv.glibc else ""
    lines = [f"{names} on {inv.host}: Python {inv.python_version} ({inv.executable}), {inv.platform}{glibc}"]
    if not comparison.rows:
        lines.append("  needs nothing beyond the standard library and code shipped by value")
        return "\n".join(lines)
    lines.append(tabulate(comparison.table_rows(), headers=["distribution", "here", f"on {inv.host}", "state"]))
    return "\n".join(lines)


def refusal(comparison: Comparison, fix: str) -> str:
    """One line: what B lacks and the command that fixes it."""
    missing = ", ".join(d.pin for d in comparison.missing)
    return f"host {comparison.inventory.host} lacks {missing} (Python {comparison.inventory.python_version} at " \
           f"{comparison.inventory.executable}), so the stage cannot import there: {fix}"


def provision_and_record(
    executor: RemoteExecutor, needs: StageNeeds, config: ProjectConfig, offline: bool | None = None
) -> ProvisionResult:
    """Build (or find) B's environment for `needs` and make it the host's `python` in the configuration."""
    result = provision(executor, needs, offline=offline, say=lambda text: click.echo(text, err=True))
    entry = config.hosts().get(executor.host)
    if result.path != "none" and (entry is None or entry.python != result.python):
        config.set_host_python(executor.host, result.python)
    return result


def say_provisioned(result: ProvisionResult, config: ProjectConfig) -> None:
    """What provisioning did, in two lines."""
    pins = " ".join(result.pins)
    if result.path == "none":
        click.echo(f"nothing to provision on {result.host}: the stage needs only the standard library "
                   "and code shipped by value")
        return
    if result.reused:
        click.echo(f"{result.host} already has an environment with {pins} ({result.env_dir}): "
                   f"nothing to do ({result.seconds:.2f} s)")
    else:
        how = "from its package index" if result.path == "index" else "from wheels sent by this side"
        click.echo(f"provisioned {result.host} with {pins} {how} in {result.seconds:.1f} s, "
                   f"{result.bytes_sent:,} bytes sent; environment {result.env_dir}")
        for note in result.notes:
            click.echo(f"  note: {note}", err=True)
    click.echo(f"  python of {result.host} is {result.python} (in {config.path})")
