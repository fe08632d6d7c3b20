"""`wiredprof show PROFILE`: render a saved profile again."""
from __future__ import annotations

import click

from wiredprof.commands.output import emit_profile, output_options
from wiredprof.profile import load_profile

__all__ = ["command"]


@click.command("show")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
@output_options
def command(profile_path: str, as_json: bool, html_path: str | None, trace_path: str | None) -> None:
    """Render a profile saved by `wiredprof analyze -o PROFILE`."""
    emit_profile(load_profile(profile_path), as_json, html_path, trace_path)
