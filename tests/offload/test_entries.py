"""The offload plan's `[offload."PIPELINE.STAGE"]` tables: read, validated, written back."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiredprof.config import ProjectConfig
from wiredprof.errors import ConfigError
from wiredprof.offload.entries import OffloadEntry, read_offloads, remove_offload, write_offload


def test_retry_means_retries(tmp_path):
    path = tmp_path / "wiredprof.toml"
    path.write_text('[offload."p.s"]\nhost = "B"\non_failure = "retry"\n')
    assert read_offloads(ProjectConfig.find(tmp_path))["p.s"].retries == 2
    path.write_text('[offload."p.s"]\nhost = "B"\non_failure = "retry"\nretries = 0\n')
    with pytest.raises(ConfigError, match='"retry" needs `retries` >= 1'):
        read_offloads(ProjectConfig.find(tmp_path))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_bad_timeouts_are_refused(tmp_path, value):
    (tmp_path / "wiredprof.toml").write_text(f'[offload."p.s"]\nhost = "B"\ntimeout_s = {value}\n')
    with pytest.raises(ConfigError, match="timeout_s` must be a positive number"):
        read_offloads(ProjectConfig.find(tmp_path))


def test_written_entries_read_back_and_go(tmp_path: Path) -> None:
    config = ProjectConfig.find(tmp_path)
    assert read_offloads(config) == {} and not remove_offload(config, "p.s")
    write_offload(config, OffloadEntry("p.s", "B", timeout_s=60, on_failure="retry", retries=3, idempotent=True))
    assert read_offloads(ProjectConfig.find(tmp_path)) == {
        "p.s": OffloadEntry("p.s", "B", 60.0, "retry", 3, True)
    }
    assert remove_offload(config, "p.s") and read_offloads(config) == {}
