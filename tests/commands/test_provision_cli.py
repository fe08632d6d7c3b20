"""`hosts check --for`, `hosts provision` and `offload --provision` on a real sshd whose python3 (the
system one) lacks what the stage needs; every bad input is one line and exit 2."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.hostb import build_tiny_wheel, host_b, install_here, put_on_path
from tests.commands.clitools import one_line_error, wp
from wiredprof.testing.localsshd import LocalSshd, system_python_like_ours

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(300)]

FLOW = Path(__file__).parents[1] / "flows" / "wiredflow_needs.py"


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    site = tmp_path / "a" / "site-packages"
    install_here(build_tiny_wheel(tmp_path / "build"), site)
    put_on_path(monkeypatch, site)
    monkeypatch.setenv("WIREDFLOW_NEEDS_MODULE", "wptiny")
    yield "wptiny"
    sys.modules.pop("wptiny", None)


def add_host(server: LocalSshd, python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WIREDPROF_SSH_DIR", str(tmp_path / "dot-ssh"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    r = wp("hosts", "add", "B", "--address", f"{server.user}@{server.address}:{server.port}",
           "--identity", server.identity, "--known-hosts", server.known_hosts, "--python", python)
    assert r.exit_code == 0, r.stderr
    return "B"


@pytest.fixture
def flow(project_dir: Path) -> Path:
    target = project_dir / "flow.py"
    shutil.copy(FLOW, target)
    return target


def run_flow(flow: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.setenv("WIREDFLOW_NEEDS_OUT", str(out))
    r = wp("run", flow, "--runs", "2")
    assert r.exit_code == 0, r.stderr
    return out.read_text().splitlines(), r.stderr


def test_refused_then_provisioned_from_wheels_and_the_output_on_b_equals_the_output_here(
    tiny: str, flow: Path, project_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, _ = run_flow(flow, tmp_path / "here.txt", monkeypatch)
    assert here and "wptiny 7 squared is 49" in here[0]
    with host_b(tmp_path / "b-cache", index=False) as server:
        add_host(server, system_python_like_ours(), tmp_path, monkeypatch)

        r = wp("hosts", "check", "B", "--for", flow, "--stage", "core_logic", "--no-save")
        assert r.exit_code == 0, r.stderr
        row = next(line for line in r.stdout.splitlines() if line.startswith("wptiny"))
        assert row.split() == ["wptiny", "1.2.3", "-", "missing", "on", "B"]
        assert "pipeline_1.core_logic on B: Python 3.11" in r.stdout and "linux-x86_64" in r.stdout
        assert f"wiredprof hosts provision B --for {flow} --stage core_logic" in r.stdout
        data = json.loads(wp("hosts", "check", "B", "--for", flow, "--json", "--no-save").stdout)
        assert data["needs"] == [{"distribution": "wptiny", "here": "1.2.3", "there": None, "direct": True,
                                  "state": "missing on B"}]

        r = wp("offload", "--stage", "core_logic", "--host", "B", flow)
        one_line_error(r, "host B lacks wptiny==1.2.3", "cannot import there", "--provision")
        assert "offload" not in (project_dir / "wiredprof.toml").read_text()  # nothing recorded

        r = wp("offload", "--stage", "core_logic", "--host", "B", flow, "--provision")
        assert r.exit_code == 0, r.stderr
        assert "provisioned B with wptiny==1.2.3 from wheels sent by this side" in r.stdout
        assert "package index failed" in r.stderr
        config = (project_dir / "wiredprof.toml").read_text()
        assert 'offload."pipeline_1.core_logic"' in config
        env_python = next(line for line in config.splitlines() if line.startswith("python = "))
        assert str(tmp_path / "b-cache" / "wiredprof" / "envs") in env_python

        there, err = run_flow(flow, tmp_path / "there.txt", monkeypatch)
        assert "pipeline_1.core_logic ran on B: 2 calls" in err
        assert there == here

        r = wp("hosts", "provision", "B", "--for", flow)
        assert r.exit_code == 0, r.stderr
        assert "B already has an environment with wptiny==1.2.3" in r.stdout and "nothing to do" in r.stdout
        assert (project_dir / "wiredprof.toml").read_text() == config
        r = wp("hosts", "check", "B", "--for", flow, "--no-save")
        assert next(line for line in r.stdout.splitlines() if line.startswith("wptiny")).split()[-1] == "same"

        # This side moves on to wptiny 1.2.4: B's environment has another version (imports, so a warning).
        newer = tmp_path / "a2" / "site-packages"
        install_here(build_tiny_wheel(tmp_path / "build2", version="1.2.4"), newer)
        sys.modules.pop("wptiny", None)
        put_on_path(monkeypatch, newer)
        r = wp("hosts", "check", "B", "--for", flow, "--no-save")
        row = next(line for line in r.stdout.splitlines() if line.startswith("wptiny")).split()
        assert row == ["wptiny", "1.2.4", "1.2.3", "other", "version", "on", "B"]
        assert wp("offload", "--remove", "core_logic").exit_code == 0
        r = wp("offload", "--stage", "core_logic", "--host", "B", flow)
        assert r.exit_code == 0, r.stderr
        assert "warning: B has wptiny 1.2.3, this side 1.2.4" in r.stderr and "--provision" in r.stderr


@pytest.mark.slow
def test_offload_provision_from_b_index(flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, _ = run_flow(flow, tmp_path / "here.txt", monkeypatch)  # tabulate, the default module
    with host_b(tmp_path / "b-cache", index=True) as server:
        add_host(server, system_python_like_ours(), tmp_path, monkeypatch)
        r = wp("offload", "--stage", "core_logic", "--host", "B", flow, "--provision")
        assert r.exit_code == 0, r.stderr
        assert "from its package index" in r.stdout
        there, _ = run_flow(flow, tmp_path / "there.txt", monkeypatch)
        assert there == here and "tabulate" not in here[0]  # the table, not an error


def test_a_module_without_a_distribution_is_refused(
    flow: Path, sshd: LocalSshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "a" / "site-packages"
    site.mkdir(parents=True)
    (site / "handcopied.py").write_text("__version__ = '0'\n\ndef render(v):\n    return v\n")
    put_on_path(monkeypatch, site)
    monkeypatch.setenv("WIREDFLOW_NEEDS_MODULE", "handcopied")
    add_host(sshd, system_python_like_ours(), tmp_path, monkeypatch)
    try:
        one_line_error(wp("hosts", "check", "B", "--for", flow), "needs handcopied", "install it with pip here")
        one_line_error(wp("offload", "--stage", "core_logic", "--host", "B", flow, "--provision"), "handcopied")
    finally:
        sys.modules.pop("handcopied", None)


def test_another_python_minor_on_b_is_named(
    tiny: str, flow: Path, sshd: LocalSshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.remote.test_provision import _other_minor

    other = _other_minor()
    if other is None:
        pytest.skip("no Python of another minor version on this machine")
    add_host(sshd, other, tmp_path, monkeypatch)
    here = "%d.%d" % sys.version_info[:2]
    one_line_error(wp("hosts", "provision", "B", "--for", flow), f"this side runs {here}",
                   "does not install Pythons")


def test_no_wheel_for_b_platform_is_named(flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = build_tiny_wheel(tmp_path / "build", name="wptinywin", version="1.0", tag="cp311-cp311-win_amd64")
    site = tmp_path / "a" / "site-packages"
    install_here(wheel, site, "--platform", "win_amd64", "--only-binary=:all:", "--python-version", "3.11",
                 "--implementation", "cp", "--abi", "cp311")
    put_on_path(monkeypatch, site)
    monkeypatch.setenv("WIREDFLOW_NEEDS_MODULE", "wptinywin")
    for name, value in {"PIP_CONFIG_FILE": "/dev/null", "PIP_RETRIES": "0",
                        "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    (site / "wptinywin" / "__init__.py").write_text("__version__ = '1.0'\n\ndef render(v):\n    return v\n")
    try:
        importlib.import_module("wptinywin")
        with host_b(tmp_path / "b-cache", index=False) as server:
            add_host(server, system_python_like_ours(), tmp_path, monkeypatch)
            one_line_error(wp("hosts", "provision", "B", "--for", flow, "--offline"),
                           "no wheel of wptinywin==1.0 for B's platform (cp311, manylinux_2_", "win_amd64")
            envs = tmp_path / "b-cache" / "wiredprof" / "envs"
            assert not any(envs.iterdir())  # the half-built environment was removed
    finally:
        sys.modules.pop("wptinywin", None)


def test_check_for_without_a_flow_is_refused(sshd: LocalSshd, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    add_host(sshd, system_python_like_ours(), tmp_path, monkeypatch)
    one_line_error(wp("hosts", "check", "B", "--stage", "core_logic"), "--stage goes with --for")
    one_line_error(wp("hosts", "provision", "B", "--for", tmp_path / "nope.py"), "no such flow file")
