"""CLI tests run in a project directory of their own: `.wiredprof/` and wiredprof.toml go there."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return project
