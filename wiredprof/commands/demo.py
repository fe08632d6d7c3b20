"""`wiredprof demo`: the whole story on the bundled reference sample, with a throwaway host B.

analyze on this machine -> add and check host B -> plan -> offload core_logic to B ->
analyze again with the plan applied -> compare. Host B is an OpenSSH sshd this command
starts on 127.0.0.1 with throwaway keys and stops at the end; every step is the real
`wiredprof` command, printed before it runs, in a project directory left behind to look at.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from wiredprof.errors import UsageError, WorkFailed
from wiredprof.statedir import state_dir

__all__ = ["command"]

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "reference_flow.py"


def _step(title: str, args: list[str], cwd: Path, check: bool = True) -> None:
    if title:  # a step of the same numbered part shows its command only
        click.secho(f"\n== {title}", bold=True)
    click.secho("$ wiredprof " + " ".join(shlex.quote(a) for a in args), fg="cyan")
    proc = subprocess.run([sys.executable, "-m", "wiredprof", *args], cwd=cwd, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise WorkFailed(f"the demo stopped: `wiredprof {args[0]}` exited with {proc.returncode}")


@click.command("demo")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("wiredprof-demo"),
              show_default=True, help="Project directory for the demo (profiles, HTML pages, wiredprof.toml).")
@click.option("--scale", type=float, default=0.05, show_default=True,
              help="The reference durations times this (0.05: core logic about 3 s of CPU).")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds per profiled run.")
def command(workdir: Path, scale: float, duration: float) -> None:
    """Profile the reference sample, offload its core logic to a local host B, and compare."""
    from wiredprof.testing.localsshd import SshdUnavailable, start_local_sshd

    if not SAMPLE.is_file():
        raise UsageError(f"the bundled sample is missing ({SAMPLE}); run the demo from a checkout of wiredprof")
    if scale <= 0 or duration <= 0:
        raise UsageError("--scale and --duration must be positive")
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(state_dir(workdir), ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    # The demo's own project file: the configuration is looked up from the working directory
    # upwards, so without it host B and the offload would land in an enclosing project's file.
    (workdir / "wiredprof.toml").write_text(
        "# wiredprof demo project: `wiredprof demo` rewrites this file on every run.\n", encoding="utf-8")
    flow_args = ["--", "--scale", f"{scale:g}"]
    run = ["--duration", f"{duration:g}"]

    _step("1. Where does the time go? (everything on this machine, host A)",
          ["analyze", str(SAMPLE), *run, "--flow-log", "before.log", "-o", "before.json", "--html", "before.html",
           *flow_args], workdir)
    try:
        sshd = start_local_sshd()
    except SshdUnavailable as exc:
        raise UsageError(f"the demo's host B needs OpenSSH's sshd (apt-get install openssh-server): {exc}") from None
    try:
        click.secho(f"\nHost B for this demo: a throwaway OpenSSH sshd on {sshd.address}:{sshd.port} "
                    "(this same machine: its CPU is no faster).", fg="yellow")
        _step("2. Add host B and measure it",
              ["hosts", "add", "B", "--address", f"{sshd.user}@{sshd.address}:{sshd.port}",
               "--identity", str(sshd.identity), "--known-hosts", str(sshd.known_hosts)], workdir)
        _step("", ["hosts", "check", "B"], workdir)
        _step("3. Would moving a stage help?", ["plan", "before.json"], workdir)
        _step("4. Run pipeline_3.core_logic on B, as the plan recommends; the flow and every other stage stay here",
              ["offload", "--stage", "pipeline_3.core_logic", "--host", "B", str(SAMPLE)], workdir)
        _step("5. The same flow, with the plan applied",
              ["analyze", str(SAMPLE), *run, "--flow-log", "after.log", "-o", "after.json", "--html", "after.html",
               *flow_args], workdir)
        _step("6. Before and after", ["compare", "before.json", "after.json"], workdir)
    finally:
        sshd.stop()
    click.secho(
        f"\nDone. In {workdir}: before.html and after.html (timelines, call stacks), before.json and after.json,"
        " before.log and after.log (the flow's own output),"
        " wiredprof.toml (host B and the offload). Host B was this machine, so what core_logic gains here is"
        " what it stops losing to wiredflow's MQTT loop on the GIL; benchmarks/reference.py simulates a"
        " 4x faster host B.", fg="green")
