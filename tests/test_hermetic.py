"""The suite is hermetic: a configuration where the suite was started from does not reach a test."""
from __future__ import annotations

import os
from pathlib import Path

from wiredprof.config import ProjectConfig


def test_each_test_has_its_own_home_and_an_empty_working_directory(tmp_path: Path):
    assert Path(os.environ["HOME"]) == tmp_path / "home"
    assert "SSH_AUTH_SOCK" not in os.environ
    assert Path.cwd() == tmp_path / "cwd" and not any(Path.cwd().iterdir())
    # No wiredprof.toml or pyproject.toml up from here: the project is this directory.
    assert ProjectConfig.find().path == tmp_path / "cwd" / "wiredprof.toml"
