"""`wiredprof hosts add|list|check|remove`: the hosts a stage may be offloaded to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from wiredprof.commands.needs import flow_stages, needs_of, needs_report, provision_and_record, say_provisioned
from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import PythonMismatchError, UnknownHostError, UsageError
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.remote.hosts import list_hosts, resolve_host
from wiredprof.remote.probe import ProbeResult, load_probe, probe, save_probe
from wiredprof.remote.hostenv import compare, inspect_host
from wiredprof.remote.spec import parse_address
from wiredprof.stages import StageName
from wiredprof.statedir import probes_dir

__all__ = ["command"]


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


@click.group("hosts")
@click.option(
    "-C",
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project directory (default: found from the current directory up).",
)
@click.pass_context
def command(ctx: click.Context, project: Path | None) -> None:
    """Hosts a stage may run on: the project's inventory plus ~/.ssh/config."""
    ctx.obj = project


@command.command("add")
@click.argument("name")
@click.option("--address", help="user@host:port, or a Host alias of ~/.ssh/config.")
@click.option("--dask", "dask", metavar="tcp://HOST:PORT", help="A Dask cluster's scheduler instead of an SSH host.")
@click.option("--ca-file", help="Dask over TLS: the CA certificate file.")
@click.option("--cert", help="Dask over TLS: this client's certificate file.")
@click.option("--key", help="Dask over TLS: this client's private key file.")
@click.option("--identity", help="Private key file (optional: the agent and ~/.ssh/config work too).")
@click.option("--python", "python", help="Python on the host (default python3); same major.minor as here.")
@click.option(
    "--known-hosts", "known_hosts_file", help="known_hosts file to use instead of ~/.ssh/known_hosts."
)
@click.option("--replace", is_flag=True, help="Overwrite an existing entry of that name.")
@click.pass_obj
def add(
    project: Path | None,
    name: str,
    address: str | None,
    dask: str | None,
    ca_file: str | None,
    cert: str | None,
    key: str | None,
    identity: str | None,
    python: str | None,
    known_hosts_file: str | None,
    replace: bool,
) -> None:
    """Add host NAME to the project's inventory (nothing secret is written)."""
    if dask is not None or ca_file or cert or key:
        from wiredprof.cluster.hostcli import add_dask_host

        click.echo(add_dask_host(project, name, address, dask, ca_file, cert, key, replace))
        return
    if address is None:
        raise UsageError("give --address USER@HOST[:PORT] (an SSH host) or --dask tcp://HOST:PORT (a Dask cluster)")
    try:
        parse_address(address)
    except ValueError as exc:
        raise UsageError(f"--address: {exc}") from None
    config = ProjectConfig.find(project)
    config.add_host(HostEntry(name, address, identity, python, known_hosts_file), replace=replace)
    click.echo(
        f"added host {name} ({address}) to {config.path}; check it with `wiredprof hosts check {name}`"
    )


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_(project: Path | None, as_json: bool) -> None:
    """List the hosts, with what their last check found."""
    config = ProjectConfig.find(project)
    rows: list[dict[str, Any]] = []
    for host in list_hosts(project):
        saved = load_probe(probes_dir(config.root), host.name)
        rows.append(
            {
                "name": host.name,
                "address": host.address,
                "source": host.source,
                "python": host.python,
                "probe": saved.to_dict() if saved else None,
            }
        )
    if as_json:
        click.echo(json.dumps({"schema": "wiredprof.hosts/1", "hosts": rows}, indent=2))
        return
    if not rows:
        click.echo("no hosts: add one with `wiredprof hosts add NAME --address USER@HOST`")
        return
    table = []
    for row in rows:
        p = row["probe"]
        table.append(
            [
                row["name"],
                row["address"],
                row["source"],
                p["python"] if p else row["python"],
                p["cores"] if p else "",
                f"{p['cpu_speed_ratio']:.2f}x" if p else "",
                _gib(p["memory_bytes"]) if p else "",
                f"{p['rtt_s'] * 1e3:.2f}" if p else "",
                p["probed_at"] if p else "never",
            ]
        )
    click.echo(
        tabulate(
            table,
            headers=[
                "host",
                "address",
                "from",
                "python",
                "cores",
                "cpu vs here",
                "memory",
                "rtt ms",
                "checked",
            ],
        )
    )


@command.command("check")
@click.argument("name")
@click.option("--accept-new", is_flag=True, help="Accept and record the host key if it is not known yet.")
@click.option("--json", "as_json", is_flag=True, help="Print the probe as JSON.")
@click.option("--no-save", is_flag=True, help="Do not save the probe under .wiredprof/hosts/.")
@click.option("--for", "flow", type=click.Path(dir_okay=False), metavar="FLOW.py",
              help="Also compare what FLOW's stages need (third-party distributions) with what NAME has.")
@click.option("--stage", metavar="STAGE", help="With --for: only this stage (default: those offloaded to NAME).")
@click.pass_obj
def check(
    project: Path | None, name: str, accept_new: bool, as_json: bool, no_save: bool, flow: str | None,
    stage: str | None,
) -> None:
    """Connect to NAME and measure it: Python, cores, memory, CPU speed vs here, RTT, bandwidth."""
    if stage and not flow:
        raise UsageError("--stage goes with --for FLOW.py")
    from wiredprof.cluster.spec import dask_host

    dask = dask_host(name, project)
    if dask is not None:
        if flow:
            raise UsageError(f"--for compares a flow's needs with an SSH host's packages; {name} is a Dask cluster: "
                             f"`wiredprof hosts check {name}` lists its workers' Python and dask versions")
        from wiredprof.cluster.hostcli import check_dask_host

        click.echo(check_dask_host(dask, project, as_json, no_save))
        return
    config = ProjectConfig.find(project)
    spec = resolve_host(name, project=project)
    chosen: list[StageName] = []
    if flow:
        _, chosen = flow_stages(flow, stage, name, config)
        needs = needs_of(chosen)
    with RemoteExecutor(spec, accept_new=accept_new) as executor:
        result = probe(executor)
        comparison = compare(needs, inspect_host(executor)) if flow else None
    saved = None if no_save else save_probe(result, probes_dir(config.root))
    if as_json:
        data = result.to_dict()
        if comparison is not None:
            data["needs"] = [{"distribution": d.name, "here": d.version, "there": there, "direct": d.direct,
                              "state": comparison.state(d.version, there)} for d, there in comparison.rows]
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_probe_table(result))
    if saved is not None:
        click.echo(f"saved to {saved}")
    if comparison is not None:
        click.echo(needs_report(comparison, chosen))
        if not comparison.ok:
            what = f" --stage {stage}" if stage else ""
            click.echo(f"provide this side's versions there: wiredprof hosts provision {name} --for {flow}{what}")


@command.command("provision")
@click.argument("name")
@click.option("--for", "flow", required=True, type=click.Path(dir_okay=False), metavar="FLOW.py",
              help="The flow whose stages will run on NAME.")
@click.option("--stage", metavar="STAGE", help="Only this stage (default: those offloaded to NAME).")
@click.option("--offline", is_flag=True, help="Do not use NAME's package index: send wheels from here.")
@click.option("--accept-new", is_flag=True, help="Accept and record the host key if it is not known yet.")
@click.pass_obj
def provision_(
    project: Path | None, name: str, flow: str, stage: str | None, offline: bool, accept_new: bool
) -> None:
    """Give NAME a private environment with this side's versions of what FLOW's stages need."""
    config = ProjectConfig.find(project)
    spec = resolve_host(name, project=project)
    _, chosen = flow_stages(flow, stage, name, config)
    needs = needs_of(chosen)
    try:
        with RemoteExecutor(spec, accept_new=accept_new) as executor:
            result = provision_and_record(executor, needs, config, offline=True if offline else None)
    except PythonMismatchError as exc:
        raise PythonMismatchError(f"{exc} (wiredprof does not install Pythons)") from None
    say_provisioned(result, config)


def _probe_table(r: ProbeResult) -> str:
    cloudpickle = r.cloudpickle or "absent (shipped over the channel)"
    rows = [
        ["host", f"{r.host} ({r.address})"],
        ["connect", f"{r.connect_s * 1e3:.0f} ms"],
        ["python", f"{r.python} ({r.python_executable})"],
        ["cloudpickle", cloudpickle],
        ["cpu", f"{r.cores} cores, {r.cpu_model}"],
        ["cpu speed vs here", f"{r.cpu_speed_ratio:.2f}x (single thread"
         + (f", ±{r.ratio_spread:.0%} over {r.speed_rounds} rounds" if r.speed_rounds else "")
         + (", noisy)" if r.noisy else ")")],
        ["load", f"{r.busy_cores:.1f} of {r.cores} cores busy, load average {r.loadavg_1m:.2f}"
         + ("; this same machine (same machine-id and boot id)" if r.same_machine else "")],
        ["memory", _gib(r.memory_bytes)],
        ["rtt", f"{r.rtt_s * 1e3:.2f} ms median, {r.rtt_p95_s * 1e3:.2f} ms p95"],
        ["bandwidth", f"{r.bandwidth_bytes_per_s / 2**20:.0f} MiB/s"],
        ["platform", r.platform],
    ]
    return str(tabulate(rows, tablefmt="plain"))


@command.command("remove")
@click.argument("name")
@click.pass_obj
def remove(project: Path | None, name: str) -> None:
    """Remove NAME from the project's inventory (and its saved probe)."""
    config = ProjectConfig.find(project)
    if not config.remove_host(name):
        if any(h.name == name for h in list_hosts(project)):
            raise UsageError(f"host {name} comes from ~/.ssh/config, which wiredprof does not edit")
        raise UnknownHostError(name, sorted(config.hosts()))
    (probes_dir(config.root) / f"{name}.json").unlink(missing_ok=True)
    click.echo(f"removed host {name} from {config.path}")
