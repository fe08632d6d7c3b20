"""Shared fixtures: paths of the test flows, and a guard that no test leaves wiredprof recording."""
from __future__ import annotations

from pathlib import Path

import pytest

FLOWS = Path(__file__).parent / "flows"


@pytest.fixture
def flows() -> Path:
    return FLOWS


@pytest.fixture(autouse=True)
def no_recorder_left_behind():
    from wiredprof.profiling.control import current_control
    from wiredprof.profiling.recorder import current_recorder

    yield
    assert current_recorder() is None, "a test left wiredprof recording"
    assert current_control() is None, "a test left a run control installed"
