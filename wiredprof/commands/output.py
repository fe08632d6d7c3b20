"""Writing a profile out in the formats a command was asked for (shared by analyze, show, run)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from typing import Any, Callable, TypeVar

import click

from wiredprof.errors import UsageError
from wiredprof.profile import Profile
from wiredprof.reports.text import render_text

__all__ = ["emit_profile", "output_options", "check_writable", "save_output"]


F = TypeVar("F", bound=Callable[..., Any])


def output_options(fn: F) -> F:
    """--json, --html FILE, --trace FILE."""
    fn = click.option("--trace", "trace_path", type=click.Path(dir_okay=False),
                      help="Write Chrome trace-event JSON (opens in Perfetto).")(fn)
    fn = click.option("--html", "html_path", type=click.Path(dir_okay=False),
                      help="Write one self-contained HTML page: timeline and call tree.")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the wiredprof.profile/1 JSON object.")(fn)
    return fn


def check_writable(*paths: str | None) -> None:
    """Before a run: each output path can be written (its folder exists, it is no folder itself)."""
    for path in paths:
        if not path:
            continue
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        if target.is_dir():
            raise UsageError(f"cannot write {path}: it is a directory; give a file name")
        if not folder.is_dir():
            raise UsageError(f"cannot write {path}: folder {folder} does not exist; create it or choose another path")
        if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise UsageError(f"cannot write {path}: permission denied")


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def emit_profile(profile: Profile, as_json: bool, html_path: str | None, trace_path: str | None) -> None:
    """Print the profile (table or JSON) and write the requested files."""
    if as_json:
        click.echo(profile.to_json())
    else:
        click.echo(render_text(profile), nl=False)
    if html_path:
        from wiredprof.reports.html import render_html

        _write(html_path, render_html(profile))
        click.echo(f"wiredprof: wrote {html_path}", err=True)
    if trace_path:
        from wiredprof.reports.trace import render_trace

        _write(trace_path, json.dumps(render_trace(profile)))
        click.echo(f"wiredprof: wrote {trace_path} (open it in https://ui.perfetto.dev)", err=True)
    sys.stdout.flush()


def save_output(profile: Profile, path: str | None) -> bool:
    """`-o PROFILE`: save the profile there (a one-line error when it cannot); False without `-o`."""
    if not path:
        return False
    try:
        profile.save(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return True
