"""The `wiredprof` command: a click group; each command is a thin module in `commands/`.

Commands are loaded lazily (click's documented "lazy group" pattern): `wiredprof --help`
and `import wiredprof.cli` import no command module, so neither pays for paramiko,
cryptography or cloudpickle; a command's module is imported when that command runs.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from wiredprof import __version__
from wiredprof.errors import WiredprofError

__all__ = ["cli", "main", "COMMANDS"]

# name -> (module under wiredprof.commands, the one-line help `wiredprof --help` shows).
# tests/commands/test_cli.py checks each line against the command's own docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("analyze", "Run FLOW.py unchanged for a bounded time and show where the time goes."),
    "show": ("show", "Render a profile saved by `wiredprof analyze -o PROFILE`."),
    "compare": ("compare", "Show how each pipeline and stage changed from OLD to NEW (saved profiles)."),
    "plan": ("plan", "Rank (stage, host) moves by predicted gain for the flow, from a profile and host probes."),
    "offload": ("offload",
                "Make STAGE run on host H over SSH; the flow, its pipelines and other stages stay as they are."),
    "run": ("run", "Run FLOW.py with the project's offload plan applied; the flow stays the single entry point."),
    "hosts": ("hosts", "Hosts a stage may run on: the project's inventory plus ~/.ssh/config."),
    "demo": ("demo", "Profile the reference sample, offload its core logic to a local host B, and compare."),
}


class _Group(click.Group):
    """Loads commands on demand; turns wiredprof's own errors into one line and their exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `wiredprof --help`, from COMMANDS: no command module is imported."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help) for name, (_, short_help) in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WiredprofError as exc:
            click.echo(f"wiredprof: error: {exc}", err=True)
            sys.exit(exc.exit_code)


def load_command(name: str) -> click.Command:
    """The real click command `name` (imports its module)."""
    module = importlib.import_module(f"wiredprof.commands.{COMMANDS[name][0]}")
    command: click.Command = module.command
    return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wiredprof")
def cli() -> None:
    """Find the bottleneck stage of a pipeline service, and run that one stage on a bigger host."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="wiredprof")
