"""`wiredprof plan [PROFILE] [--host H ...]`: what moving each stage to each host would do."""
from __future__ import annotations

import click

from wiredprof.config import ProjectConfig
from wiredprof.errors import UsageError
from wiredprof.flowstages import stage_refusals
from wiredprof.placement.capacity import host_capacity
from wiredprof.placement.model import make_plan
from wiredprof.profile import load_profile
from wiredprof.reports.plan_text import render_plan
from wiredprof.statedir import last_profile_path, load_last_profile

__all__ = ["command"]


@click.command("plan")
@click.argument("profile_path", metavar="[PROFILE]", required=False, type=click.Path(dir_okay=False))
@click.option("--host", "hosts", multiple=True, metavar="H", help="Consider this host (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the wiredprof.plan/1 JSON object.")
def command(profile_path: str | None, hosts: tuple[str, ...], as_json: bool) -> None:
    """Rank (stage, host) moves by predicted gain for the flow, from a profile and host probes."""
    config = ProjectConfig.find()
    if profile_path:
        profile = load_profile(profile_path)
    else:
        profile = load_last_profile(config.root)
        profile_path = str(last_profile_path(config.root))
    names = list(hosts) or sorted(config.hosts())
    if not names:
        raise UsageError("no hosts to plan for: `wiredprof hosts add B --address USER@HOST`, "
                         "then `wiredprof hosts check B`")
    from wiredprof.remote.hosts import require_host

    for name in names:
        require_host(name, project=config.root)  # an unknown host is named with the known ones

    def say_probing(name: str) -> None:
        click.echo(f"wiredprof: host {name} has no probe yet: measuring it now (`wiredprof hosts check {name}`)...",
                   err=True)

    capacities = [host_capacity(config, name, probe_missing=say_probing) for name in names]
    plan = make_plan(profile, capacities, profile_path, refusals=stage_refusals(profile))
    click.echo(plan.to_json() if as_json else render_plan(plan))
