"""`wiredprof offload --stage STAGE --host H [FLOW.py]`: run one stage on another host from now on."""
from __future__ import annotations

import math
from typing import Any

import click
from tabulate import tabulate

from wiredprof.config import ProjectConfig
from wiredprof.errors import UsageError
from wiredprof.flowstages import known_stages
from wiredprof.offload.connect import open_runtime
from wiredprof.offload.entries import (
    DEFAULT_RETRIES, ON_FAILURE_CHOICES, OffloadEntry, read_offloads, remove_offload, write_offload,
)
from wiredprof.placement.capacity import host_capacity
from wiredprof.placement.model import make_plan
from wiredprof.profile import Profile, load_profile
from wiredprof.reports.text import fmt_s
from wiredprof.stages import StageName, offload_refusal, resolve_stage
from wiredprof.statedir import last_profile_path

__all__ = ["command", "default_timeout"]

# With no profile to go by, a call may take this long before it counts as lost.
_TIMEOUT_WITHOUT_PROFILE_S = 600.0
_TIMEOUT_MIN_S = 60.0
_TIMEOUT_P95_FACTOR = 10.0


def default_timeout(profile: Profile | None, name: str) -> tuple[float, str]:
    """The per-call timeout `offload` records when none is given, and why: 10x p95, at least 60 s."""
    stage = next((s for s in profile.stages if s.name == name and s.calls), None) if profile else None
    if stage is None:
        return _TIMEOUT_WITHOUT_PROFILE_S, "no profile of this stage yet"
    timeout = float(max(_TIMEOUT_MIN_S, math.ceil(_TIMEOUT_P95_FACTOR * stage.p95_s)))
    return timeout, f"{_TIMEOUT_P95_FACTOR:g}x its p95 of {fmt_s(stage.p95_s)}, at least {_TIMEOUT_MIN_S:g} s"


def _timeout_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"--timeout must be a positive, finite number of seconds, not {value!r}")
    return seconds


def _last_profile(config: ProjectConfig) -> Profile | None:
    path = last_profile_path(config.root)
    return load_profile(path) if path.is_file() else None


def _list(config: ProjectConfig) -> None:
    entries = read_offloads(config)
    if not entries:
        click.echo(f"no stage is offloaded ({config.path})")
        return
    rows = [[e.stage, e.host, f"{e.timeout_s:g} s" if e.timeout_s else "-", e.on_failure, e.retries,
             "yes" if e.idempotent else "no"] for e in entries.values()]
    click.echo(tabulate(rows, headers=["stage", "host", "timeout", "on failure", "retries", "idempotent"]))


@click.command("offload")
@click.argument("flow", required=False, type=click.Path(dir_okay=False))
@click.option("--stage", metavar="STAGE", help="PIPELINE.STAGE, or a stage name unique in the flow.")
@click.option("--host", metavar="H", help="A host of the inventory or of ~/.ssh/config.")
@click.option("--timeout", "timeout_s", callback=_timeout_option, metavar="SECONDS",
              help="Fail a call that takes longer on the host (default: 10x the stage's p95 in the last "
                   "profile, at least 60 s).")
@click.option("--on-failure", type=click.Choice(ON_FAILURE_CHOICES), default="fail", show_default=True,
              help="When the host or the link fails (never the stage's own error): fail the stage, retry "
                   "then fail, or after the retries run it locally.")
@click.option("--retries", type=click.IntRange(0, 100), default=None,
              help="Retries after a failure of the host or the link (default 2 with --on-failure retry, else 0).")
@click.option("--idempotent", is_flag=True,
              help="The stage may run twice: allow a retry or local run even after the host started a call.")
@click.option("--provision", "provision", is_flag=True,
              help="Give the host a private environment with this side's versions of what the stage needs.")
@click.option("--list", "list_", is_flag=True, help="List the offloaded stages.")
@click.option("--remove", metavar="STAGE", help="Run STAGE locally again.")
def command(
    flow: str | None, stage: str | None, host: str | None, timeout_s: float | None, on_failure: str,
    retries: int | None, idempotent: bool, provision: bool, list_: bool, remove: str | None,
) -> None:
    """Make STAGE run on host H over SSH; the flow, its pipelines and other stages stay as they are."""
    config = ProjectConfig.find()
    if list_:
        _list(config)
        return
    if remove:
        entries = read_offloads(config)
        planned = [StageName(*e.stage.split(".", 1)) for e in entries.values()]  # type: ignore[arg-type]
        name = resolve_stage(remove, planned,
                             where="the offload plan").full if entries else remove
        if not remove_offload(config, name):
            raise UsageError(f"{remove!r} is not offloaded (see `wiredprof offload --list`)")
        click.echo(f"{name} runs locally again")
        return
    if not stage or not host:
        raise UsageError("give --stage STAGE and --host H (or --list, --remove STAGE)")
    retries = DEFAULT_RETRIES[on_failure] if retries is None else retries
    if on_failure == "retry" and retries < 1:
        raise UsageError("--on-failure retry needs --retries 1 or more (or use --on-failure fail)")

    profile = _last_profile(config)
    stages, source = known_stages(flow, profile)
    target = resolve_stage(stage, stages, where=source)
    name = target.full
    refusal = offload_refusal(target)
    if refusal:
        raise UsageError(refusal)
    from wiredprof.remote.hosts import require_host

    require_host(host, project=config.root)  # an unknown host is named with the known ones
    existing = read_offloads(config).get(name)
    if existing is not None:
        raise UsageError(f"{name} is already offloaded to {existing.host}; "
                         f"`wiredprof offload --remove {name}` first")
    timeout_why = "given"
    if timeout_s is None:
        timeout_s, timeout_why = default_timeout(profile, name)
    entry = OffloadEntry(name, host, timeout_s, on_failure, retries, idempotent)
    if provision:
        from wiredprof.cluster.spec import dask_host

        if dask_host(host, config.root) is not None:
            raise UsageError(f"--provision builds an environment on an SSH host; {host} is a Dask cluster, whose "
                             "workers import from their own environment: install what the stage needs there")
    if provision and not target.needs:
        raise UsageError(f"--provision: what {name} needs is found from a wiredflow flow file: give FLOW.py "
                         "(a plain-Python flow's stages exist only while it runs)")
    runtime = open_runtime(config, {name: entry})  # preflight: reachable, key, auth, Python
    assert runtime is not None
    try:
        executor = runtime.executor(host)
        hello = executor.hello
        if target.needs:  # found from the flow file: check B has what the stage imports
            _check_needs(executor, [target, *_offloaded_to(config, stages, host)], config, provision,
                         f"wiredprof offload --stage {name} --host {host} {flow or ''} --provision".replace("  ", " "))
    finally:
        runtime.close()
    write_offload(config, entry)

    click.echo(f"{name} will run on {host} (Python {hello.python} at {hello.hostname}); "
               f"the rest of the flow stays here. Saved in {config.path}.")
    policy = f"on a failure of {host} or the link: {retries} retr{'y' if retries == 1 else 'ies'}, then "
    policy += "run it locally" if on_failure == "local" else "fail the stage (the flow sees it as a stage error)"
    click.echo(f"  {policy}; " + ("a call may run again after it started on the host (idempotent)" if idempotent
                                  else "a call that started on the host never runs again (at most once)"))
    click.echo(f"  calls time out after {timeout_s:g} s ({timeout_why}; --timeout to change)")
    for reason in target.stateful:
        click.echo(f"  warning: {reason}: that state now lives on {host}, not here", err=True)
    _say_prediction(config, profile, name, host)
    click.echo(f"Run it: wiredprof run {flow or (profile.flow if profile else 'FLOW.py')}")


def _offloaded_to(config: ProjectConfig, stages: list[StageName], host: str) -> list[StageName]:
    offloaded = {n for n, e in read_offloads(config).items() if e.host == host}
    return [s for s in stages if s.full in offloaded]


def _check_needs(executor: Any, stages: list[StageName], config: ProjectConfig, provision: bool, fix: str) -> None:
    """Refuse a stage that cannot import on the host (naming what it lacks), or provision the host."""
    from wiredprof.commands.needs import needs_of, needs_report, provision_and_record, refusal, say_provisioned
    from wiredprof.remote.hostenv import compare, inspect_host

    needs = needs_of(stages)
    comparison = compare(needs, inspect_host(executor))
    if comparison.missing and not provision:
        raise UsageError(refusal(comparison, f"run `{fix}`"))
    click.echo(needs_report(comparison, stages))
    if provision:
        if comparison.ok:
            click.echo(f"  {executor.host} already has {' '.join(needs.pins) or 'all it needs'}: nothing to provision")
            return
        say_provisioned(provision_and_record(executor, needs, config), config)
        return
    for d, there in comparison.different:
        click.echo(f"  warning: {executor.host} has {d.name} {there}, this side {d.version}: results may differ; "
                   f"--provision gives it this side's versions", err=True)


def _say_prediction(config: ProjectConfig, profile: Profile | None, name: str, host: str) -> None:
    if profile is None or not any(s.name == name and s.calls for s in profile.stages):
        click.echo("  no prediction: profile the flow first (`wiredprof analyze FLOW.py`)")
        return
    try:
        capacity = host_capacity(config, host)
    except UsageError as exc:
        click.echo(f"  no prediction: {exc}")
        return
    rec = next(r for r in make_plan(profile, [capacity]).recommendations if r.stage == name)
    click.echo(f"  predicted: {fmt_s(rec.current_s)} -> {fmt_s(rec.predicted_s)} per call "
               f"({fmt_s(rec.predicted_low_s)} to {fmt_s(rec.predicted_high_s)}); "
               f"{rec.pipeline} cycle {fmt_s(rec.pipeline_cycle_s)} -> {fmt_s(rec.predicted_pipeline_cycle_s)}; "
               f"flow cycle {fmt_s(rec.flow_cycle_s)} -> {fmt_s(rec.predicted_flow_cycle_s)}")
    if not rec.recommended:
        click.echo(f"  note: the planner does not recommend this move: {rec.reason}", err=True)
