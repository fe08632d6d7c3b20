"""The `.wiredprof/` directory: one layout, the last profile kept and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.profiles import reference
from wiredprof.errors import UsageError
from wiredprof.statedir import last_profile_path, load_last_profile, probes_dir, save_last_profile, state_dir


def test_layout(tmp_path: Path) -> None:
    assert state_dir(tmp_path) == tmp_path / ".wiredprof"
    assert probes_dir(tmp_path) == tmp_path / ".wiredprof" / "hosts"
    assert last_profile_path(tmp_path) == tmp_path / ".wiredprof" / "last-profile.json"


def test_last_profile_saved_and_loaded(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no profile yet in .*wiredprof analyze"):
        load_last_profile(tmp_path)
    profile = reference()
    assert save_last_profile(profile, tmp_path) == last_profile_path(tmp_path)
    assert load_last_profile(tmp_path).to_dict() == profile.to_dict()
