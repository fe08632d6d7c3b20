"""Screenshots with headless Chromium: the timeline as a PNG (docs, benchmark reports) and pages checked by tests.

Chromium is an optional system tool (`apt-get install chromium`), never a Python dependency.
Each run gets a fresh, empty profile directory and no network services, so a screenshot
shows only what the page itself contains.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from wiredprof.errors import WiredprofError

__all__ = ["ChromiumError", "find_chromium", "screenshot", "screenshot_html", "write_png"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ChromiumError(WiredprofError):
    """Chromium is missing, or it did not produce the screenshot."""


def find_chromium() -> str | None:
    """The Chromium to use: $WIREDPROF_CHROMIUM, else the first one on PATH, else None."""
    env = os.environ.get("WIREDPROF_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((p for p in (shutil.which(c) for c in _CANDIDATES) if p), None)


def screenshot(
    page: Path,
    png: Path,
    width: int,
    height: int,
    *,
    scale: float = 1.0,
    chromium: str | None = None,
    timeout_s: float = 90.0,
) -> Path:
    """Render the local file `page` at width x height CSS pixels into `png`; return `png`."""
    exe = chromium or find_chromium()
    if exe is None:
        raise ChromiumError(
            "no Chromium found: install it (apt-get install chromium) or set WIREDPROF_CHROMIUM"
        )
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    with tempfile.TemporaryDirectory(prefix="wiredprof-chromium-") as profile_dir:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--force-device-scale-factor={scale:g}",
            f"--user-data-dir={profile_dir}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise ChromiumError(f"{exe} did not finish the screenshot within {timeout_s:g} s") from None
        except OSError as exc:
            raise ChromiumError(f"cannot run {exe}: {exc.strerror}") from None
    if not png.is_file() or png.stat().st_size == 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ChromiumError(f"{exe} wrote no screenshot (exit {proc.returncode}): {' | '.join(tail)}")
    return png


def screenshot_html(
    html_text: str, png: Path, width: int, height: int, *, scale: float = 1.0, chromium: str | None = None
) -> Path:
    """Like `screenshot`, for a page given as text (written to a temporary file first)."""
    with tempfile.TemporaryDirectory(prefix="wiredprof-page-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html_text, encoding="utf-8")
        return screenshot(page, png, width, height, scale=scale, chromium=chromium)


def write_png(svg: str, path: str | Path, *, scale: float = 1.0, chromium: str | None = None) -> Path:
    """Rasterise a `reports.timeline` SVG to PNG with headless Chromium, at the SVG's size times `scale`.

    Raises `ChromiumError` when no Chromium is installed or it fails.
    """
    m = re.search(r'<svg[^>]*\bwidth="(\d+)" height="(\d+)"', svg)
    if not m:
        raise ValueError("not an SVG made by render_timeline_svg (no width/height)")
    width, height = int(m.group(1)), int(m.group(2))
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0;'
        "background:#fff;overflow:hidden}svg{display:block}</style></head><body>" + svg + "</body></html>"
    )
    return screenshot_html(page, Path(path), width, height, scale=scale, chromium=chromium)
