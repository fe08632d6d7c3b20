"""Each test here gets a tag its processes carry; whatever still carries it at the end fails the test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proctree._procs import TAG, kill_tagged, new_tag


@pytest.fixture
def tag(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    t = new_tag()
    monkeypatch.setenv(TAG, t)  # inherited by what the test starts in-process (discovery) too
    yield t
    assert not kill_tagged(t), "a process of the test was still running"
