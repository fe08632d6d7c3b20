"""Screenshots with headless Chromium: how the timeline becomes a PNG, and how pages are checked.

Chromium is an optional system tool (`apt-get install chromium`), never a Python dependency.
Each run gets a fresh, empty profile directory and no network services, so a screenshot
shows only what the page itself contains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from wiredprof.errors import WiredprofError

__all__ = ["ChromiumError", "find_chromium", "screenshot", "screenshot_html"]

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
