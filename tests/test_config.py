"""wiredprof.toml / [tool.wiredprof]: reading, validation, and edits that keep comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiredprof.config import HostEntry, ProjectConfig
from wiredprof.errors import ConfigError
from wiredprof.offload.entries import OffloadEntry, read_offloads, remove_offload, write_offload
from wiredprof.statedir import probes_dir


def test_find_prefers_wiredprof_toml_and_walks_up(tmp_path: Path) -> None:
    (tmp_path / "wiredprof.toml").write_text('[hosts.B]\naddress = "me@big:2222"\n')
    nested = tmp_path / "src" / "flows"
    nested.mkdir(parents=True)
    config = ProjectConfig.find(nested)
    assert config.path == tmp_path / "wiredprof.toml" and not config.in_pyproject
    assert config.hosts() == {"B": HostEntry("B", "me@big:2222")}
    assert probes_dir(config.root) == tmp_path / ".wiredprof" / "hosts"


def test_tool_table_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.wiredprof.hosts.B]\naddress = "big"  # an ssh_config alias\n'
    )
    config = ProjectConfig.find(tmp_path)
    assert config.in_pyproject and config.hosts()["B"].address == "big"
    config.add_host(HostEntry("C", "u@c", identity="~/.ssh/id_c"))
    text = (tmp_path / "pyproject.toml").read_text()
    assert "# an ssh_config alias" in text and '[project]\nname = "x"' in text
    assert ProjectConfig.find(tmp_path).hosts()["C"].identity == "~/.ssh/id_c"


def test_pyproject_without_tool_table_uses_wiredprof_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    config = ProjectConfig.find(tmp_path)
    assert config.path == tmp_path / "wiredprof.toml" and config.hosts() == {}


def test_edits_keep_comments_and_remove(tmp_path: Path) -> None:
    path = tmp_path / "wiredprof.toml"
    path.write_text('# my hosts\n[hosts.A]\naddress = "a@a"  # the small box\n')
    config = ProjectConfig.find(tmp_path)
    config.add_host(HostEntry("B", "me@big:22", python="/opt/py311/bin/python3"))
    write_offload(
        config, OffloadEntry("pipeline_3.core_logic", "B", timeout_s=600, on_failure="local", retries=2)
    )
    text = path.read_text()
    assert "# my hosts" in text and "# the small box" in text
    assert '[offload."pipeline_3.core_logic"]' in text
    assert read_offloads(config)["pipeline_3.core_logic"] == OffloadEntry(
        "pipeline_3.core_logic", "B", 600.0, "local", 2
    )
    with pytest.raises(ConfigError, match="already in"):
        config.add_host(HostEntry("B", "x@y"))
    config.add_host(HostEntry("B", "x@y"), replace=True)
    assert config.hosts()["B"].address == "x@y"
    assert config.remove_host("B") and not config.remove_host("B")
    assert remove_offload(config, "pipeline_3.core_logic")
    assert set(config.hosts()) == {"A"} and read_offloads(config) == {}
    assert "# the small box" in path.read_text()


@pytest.mark.parametrize(
    "text, message",
    [
        ('[hosts.B]\nidentity = "k"\n', "`address` is required"),
        ('[hosts.B]\naddress = "a"\npassword = "x"\n', "unknown key"),
        ("[hosts.B]\naddress = 3\n", "must be a string"),
        ('[offload."p.s"]\nhost = "B"\non_failure = "maybe"\n', "on_failure"),
        ('[offload."p.s"]\nhost = "B"\ntimeout_s = -1\n', "timeout_s"),
        ('[offload."p.s"]\nhost = "B"\nretries = 1.5\n', "retries"),
        ("[hosts.B\n", "not valid TOML"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "wiredprof.toml").write_text(text)
    config = ProjectConfig.find(tmp_path)
    with pytest.raises(ConfigError, match=message) as info:
        config.hosts()
        read_offloads(config)
    assert "wiredprof.toml" in str(info.value)


def test_bad_host_name_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="host name"):
        ProjectConfig.find(tmp_path).add_host(HostEntry("no spaces", "a@b"))


def test_a_dask_host_table(tmp_path: Path) -> None:
    (tmp_path / "wiredprof.toml").write_text(
        '[hosts.cluster]\ndask = "tls://sched:8786"\nca_file = "ca.pem"\ncert = "c.pem"\nkey = "c.key"\n'
    )
    entry = ProjectConfig.find(tmp_path).hosts()["cluster"]
    assert entry.dask == "tls://sched:8786" and entry.address == "" and entry.key == "c.key"
    assert entry.to_table() == {"dask": "tls://sched:8786", "ca_file": "ca.pem", "cert": "c.pem", "key": "c.key"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('dask = "tcp://s:1"\naddress = "u@h"', "unknown key(s) address for a Dask host"),
        ('dask = ""', "`dask` must be a non-empty string"),
        ('dask = "tcp://s:1"\ncert = "c.pem"', "give both `cert` and `key`"),
    ],
)
def test_bad_dask_host_tables(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "wiredprof.toml").write_text(f"[hosts.cluster]\n{table}\n")
    with pytest.raises(ConfigError, match="") as info:
        ProjectConfig.find(tmp_path).hosts()
    assert message in str(info.value)


def test_link_limits_per_host_reach_the_host_spec(tmp_path):
    from wiredprof.remote.hosts import resolve_host

    (tmp_path / "wiredprof.toml").write_text(
        '[hosts.B]\naddress = "me@big:2222"\ndead_after_s = 5\nmax_frame_mb = 64\n')
    spec = resolve_host("B", project=tmp_path, ssh_dir=tmp_path)
    assert spec.dead_after_s == 5.0 and spec.max_frame_bytes == 64 << 20
    assert ProjectConfig.find(tmp_path).hosts()["B"].dead_after_s == 5.0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", '"15"', "true"])
def test_bad_dead_after_is_refused(tmp_path, value):
    (tmp_path / "wiredprof.toml").write_text(f'[hosts.B]\naddress = "me@big"\ndead_after_s = {value}\n')
    with pytest.raises(ConfigError, match="dead_after_s` must be a positive number"):
        ProjectConfig.find(tmp_path).hosts()


def test_a_config_that_is_not_utf8_is_one_clear_error(tmp_path):
    (tmp_path / "wiredprof.toml").write_bytes(b'[hosts.B]\naddress = "m\xe9@big"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        ProjectConfig.find(tmp_path).hosts()
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        ProjectConfig.find(tmp_path).add_host(HostEntry("C", "u@c"))


def test_a_config_that_is_a_directory_is_one_clear_error(tmp_path):
    (tmp_path / "wiredprof.toml").mkdir()
    with pytest.raises(ConfigError, match="is not a file"):
        ProjectConfig.find(tmp_path)


def test_a_misspelt_top_level_table_is_named(tmp_path):
    (tmp_path / "wiredprof.toml").write_text('[ofload."p.s"]\nhost = "B"\n')
    with pytest.raises(ConfigError, match="unknown table.*ofload"):
        read_offloads(ProjectConfig.find(tmp_path))


def test_rewrites_keep_comments_and_permissions(tmp_path):
    path = tmp_path / "wiredprof.toml"
    path.write_text('# my hosts\n[hosts.B]\naddress = "me@big"  # the big one\n')
    path.chmod(0o640)
    ProjectConfig.find(tmp_path).add_host(HostEntry("C", "u@c"))
    assert path.stat().st_mode & 0o777 == 0o640
    text = path.read_text()
    assert "# my hosts" in text and "# the big one" in text and "[hosts.C]" in text
    assert not list(tmp_path.glob(".wiredprof-*"))  # no temporary file left


def test_rewrites_go_through_a_symlink(tmp_path):
    real = tmp_path / "shared" / "wiredprof.toml"
    real.parent.mkdir()
    real.write_text('[hosts.B]\naddress = "me@big"\n')
    real.chmod(0o600)
    project = tmp_path / "project"
    project.mkdir()
    (project / "wiredprof.toml").symlink_to(real)
    config = ProjectConfig.find(project)
    write_offload(config, OffloadEntry("p.s", "B", timeout_s=60))
    assert (project / "wiredprof.toml").is_symlink()
    assert "[offload" in real.read_text() and real.stat().st_mode & 0o777 == 0o600
    assert remove_offload(config, "p.s") and (project / "wiredprof.toml").is_symlink()


def test_set_host_python_edits_only_that_key(tmp_path: Path) -> None:
    path = tmp_path / "wiredprof.toml"
    path.write_text('# my hosts\n[hosts.B]\naddress = "me@big"  # the big one\npython = "python3"\n')
    config = ProjectConfig.find(tmp_path)
    config.set_host_python("B", "/home/me/.cache/wiredprof/envs/abc/bin/python")
    config.set_host_python("alias", "/opt/py/bin/python")  # a Host of ~/.ssh/config: a table naming itself
    text = path.read_text()
    assert "# my hosts" in text and 'address = "me@big"  # the big one' in text
    assert config.hosts()["B"].python == "/home/me/.cache/wiredprof/envs/abc/bin/python"
    assert config.hosts()["alias"] == HostEntry("alias", "alias", python="/opt/py/bin/python")
