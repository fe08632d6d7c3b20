"""`wiredprof demo` (the README's first command) runs the whole story end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.ssh, pytest.mark.slow, pytest.mark.timeout(300)]


def test_demo_tells_the_whole_story_and_writes_only_inside_its_dir(project_dir: Path):
    # The demo runs inside an enclosing project (as it does in a checkout of wiredprof, whose
    # pyproject.toml would otherwise receive host B and the offload).
    project = project_dir
    (project / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    out = project / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "wiredprof", "demo", "--dir", "demo", "--scale", "0.01", "--duration", "6"],
        capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL, cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(p.name for p in project.iterdir()) == ["demo", "pyproject.toml"]
    assert "[hosts.B]" in (out / "wiredprof.toml").read_text()
    for step in ("$ wiredprof analyze", "$ wiredprof hosts check B", "$ wiredprof plan before.json",
                 "$ wiredprof offload --stage pipeline_3.core_logic --host B",
                 "$ wiredprof compare before.json after.json"):
        assert step in r.stdout, step
    # The command the plan recommends is the one the demo runs; every header has a title.
    if "Recommended:" in r.stdout:  # (a measurement: at this scale it may find no move worth it)
        assert "Recommended: wiredprof offload --stage pipeline_3.core_logic --host B" in r.stdout
    assert not [line for line in r.stdout.splitlines() if line.strip() == "=="]
    after = json.loads((out / "after.json").read_text())
    core = next(s for s in after["stages"] if s["stage"] == "core_logic")
    assert core["host"] == "B" and core["calls"] >= 1
    assert (out / "before.html").read_text().startswith("<!DOCTYPE html>")
    assert "reference_flow summary" in (out / "before.log").read_text()
