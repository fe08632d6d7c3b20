"""The `wiredprof` command: a click group; each command is a thin module in `commands/`."""
from __future__ import annotations

import sys
from typing import Any

import click

from wiredprof import __version__
from wiredprof.errors import WiredprofError

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns wiredprof's own errors into one line and their exit code, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WiredprofError as exc:
            click.echo(f"wiredprof: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wiredprof")
def cli() -> None:
    """Find the bottleneck stage of a pipeline service, and run that one stage on a bigger host."""


def _register() -> None:
    import importlib

    for name in ("analyze", "show", "compare", "plan", "offload", "run", "hosts", "demo"):
        try:
            module = importlib.import_module(f"wiredprof.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"wiredprof.commands.{name}":
                raise
            continue  # that command's branch has not landed yet
        cli.add_command(module.command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="wiredprof")
