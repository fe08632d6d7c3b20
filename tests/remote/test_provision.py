"""Provisioning a real host B (a throwaway sshd, the system python3 without the stage's packages)."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.remote.hostb import build_tiny_wheel, host_b, install_here, spec_of
from wiredprof.errors import PythonMismatchError
from wiredprof.remote import provision as provision_module
from wiredprof.remote.executor import RemoteExecutor
from wiredprof.testing.localsshd import LocalSshd
from wiredprof.remote.hostenv import MARKER, compare, inspect_host
from wiredprof.remote.provision import NoSpaceError, provision
from wiredprof.remote.requirements import stage_needs

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(300)]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    site = tmp_path / "a" / "site-packages"
    install_here(build_tiny_wheel(tmp_path / "build"), site)
    monkeypatch.syspath_prepend(str(site))
    yield importlib.import_module("wptiny")
    sys.modules.pop("wptiny", None)


@pytest.fixture
def offline_b(tmp_path: Path) -> Iterator[tuple[LocalSshd, Path]]:
    cache = tmp_path / "b-cache"
    with host_b(cache, index=False) as server:
        yield server, cache


def envs_of(cache: Path) -> list[Path]:
    root = cache / "wiredprof" / "envs"
    return sorted(root.iterdir()) if root.is_dir() else []


def stage(tiny: Any) -> Any:
    def core_logic(value: int) -> str:
        return str(tiny.render(value))

    return core_logic


def test_offline_provision_sends_wheels_and_the_stage_runs_there_then_a_second_is_a_noop(
    tiny: Any, offline_b: tuple[LocalSshd, Path], python_b: str, tmp_path: Path
) -> None:
    server, cache = offline_b
    spec = spec_of(server, python_b, tmp_path / "dot-ssh")
    fn = stage(tiny)
    needs = stage_needs(fn)
    with RemoteExecutor(spec) as b:
        before = compare(needs, inspect_host(b))
        assert [d.name for d in before.missing] == ["wptiny"]
        said: list[str] = []
        first = provision(b, needs, say=said.append)
        second = provision(b, needs)
    assert first.path == "offline" and not first.reused and first.pins == ("wptiny==1.2.3",)
    assert any("index failed" in note for note in first.notes) and any("wptiny-1.2.3-py3-none-any.whl" in x for x in said)
    assert first.bytes_sent > 500
    env = Path(first.env_dir)
    assert envs_of(cache) == [env]  # no temporary directory left
    assert stat.S_IMODE(env.stat().st_mode) == 0o700 and stat.S_IMODE(env.parent.stat().st_mode) == 0o700
    assert json.loads((env / MARKER).read_text())["pins"] == ["wptiny==1.2.3"]
    pip_script = (env / "bin" / "pip").read_text()  # scripts name the python of their final home
    assert f"{env}/bin/python" in pip_script and ".tmp-" not in pip_script
    assert second.reused and second.path == "reused" and second.bytes_sent == 0 and second.env_dir == first.env_dir
    with RemoteExecutor(spec.with_(python=first.python)) as there:
        assert there.call(fn, 6) == fn(6) == "<wptiny 6 squared is 36>"
        assert compare(needs, inspect_host(there)).ok


def test_pip_bootstrapped_from_a_wheel_sent_by_a(
    tiny: Any, offline_b: tuple[LocalSshd, Path], python_b: str, tmp_path: Path
) -> None:
    # B's python3 here has ensurepip; bootstrap_pip=True takes the path of one that has not.
    server, _ = offline_b
    spec = spec_of(server, python_b, tmp_path / "dot-ssh")
    with RemoteExecutor(spec) as b:
        said: list[str] = []
        result = provision(b, stage_needs(stage(tiny)), say=said.append, bootstrap_pip=True)
    assert any("pip bootstrapped from a wheel" in line for line in said)
    pip_here = importlib.metadata.version("pip")
    with RemoteExecutor(spec.with_(python=result.python)) as there:
        assert there.call(importlib.metadata.version, "pip") == pip_here
        assert there.call(importlib.metadata.version, "wptiny") == "1.2.3"


@pytest.mark.slow
def test_index_path_uses_b_own_pip_configuration(python_b: str, tmp_path: Path) -> None:
    import tabulate

    def table(x: int) -> str:
        return str(tabulate.tabulate([[x, x * x]]))

    needs = stage_needs(table)
    with host_b(tmp_path / "b-cache", index=True) as server:
        spec = spec_of(server, python_b, tmp_path / "dot-ssh")
        with RemoteExecutor(spec) as b:
            result = provision(b, needs)
        assert result.path == "index" and result.bytes_sent < 1000  # B fetched them itself
        with RemoteExecutor(spec.with_(python=result.python)) as there:
            assert there.call(table, 5) == table(5)


def test_an_interrupted_provision_is_never_marked_ready(
    tiny: Any, offline_b: tuple[LocalSshd, Path], python_b: str, tmp_path: Path
) -> None:
    server, cache = offline_b
    script = (
        "import sys, json, importlib\n"
        "from tests.remote.hostb import spec_of\n"
        "from wiredprof.remote.executor import RemoteExecutor\n"
        "from wiredprof.remote.provision import provision\n"
        "from wiredprof.remote.requirements import needs_of_modules\n"
        "from pathlib import Path\n"
        "from wiredprof.testing.localsshd import LocalSshd\n"
        "a = json.loads(sys.argv[1])\n"
        "s = LocalSshd(a['address'], a['port'], a['user'], Path(a['identity']), Path(a['known_hosts']), Path('.'), 0, '')\n"
        "with RemoteExecutor(spec_of(s, a['python'], Path(a['ssh_dir']))) as b:\n"
        "    provision(b, needs_of_modules(['wptiny']))\n"
    )
    args = json.dumps({"address": server.address, "port": server.port, "user": server.user,
                       "identity": str(server.identity), "known_hosts": str(server.known_hosts),
                       "python": python_b, "ssh_dir": str(tmp_path / "dot-ssh")})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", script, args], env=env, cwd=Path(__file__).parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Killed while B builds the environment (its python is there, pip not done yet).
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(".tmp-") and (p / "bin" / "python").exists() for p in envs_of(cache)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    left = envs_of(cache)
    assert left and all(p.name.startswith(".tmp-") and not (p / MARKER).exists() for p in left)
    spec = spec_of(server, python_b, tmp_path / "dot-ssh")
    needs = stage_needs(stage(tiny))
    deadline = time.monotonic() + 30
    with RemoteExecutor(spec) as b:
        assert inspect_host(b).ready_envs == {}
        while True:  # B's worker of the killed provision ends once sshd sees the link gone
            result = provision(b, needs)
            if not any(p.name.startswith(".tmp-") for p in envs_of(cache)) or time.monotonic() > deadline:
                break
    assert any("interrupted" in note for note in result.notes) or result.reused
    assert envs_of(cache) == [Path(result.env_dir)]


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill B's disk: {r.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "small-disk"
    yield disk
    if disk.is_mount():
        subprocess.run(["umount", "-l", str(disk)], timeout=30, check=False)


def test_no_space_on_b_is_refused_before_building(
    tiny: Any, small_disk: Path, python_b: str, tmp_path: Path
) -> None:
    _mount_tmpfs(small_disk, "3m")
    with host_b(small_disk, index=False) as server:
        with RemoteExecutor(spec_of(server, python_b, tmp_path / "dot-ssh")) as b:
            with pytest.raises(NoSpaceError) as err:
                provision(b, stage_needs(stage(tiny)))
    assert "MiB free" in str(err.value) and str(small_disk) in str(err.value) and err.value.exit_code == 2
    assert envs_of(small_disk) == []


def test_running_out_of_space_while_building_leaves_nothing(
    tiny: Any, small_disk: Path, python_b: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A disk that fills up after the check (the estimate is set too low to stop it here).
    _mount_tmpfs(small_disk, "8m")
    monkeypatch.setattr(provision_module, "_ENV_BASE_BYTES", 1 << 20)
    with host_b(small_disk, index=False) as server:
        with RemoteExecutor(spec_of(server, python_b, tmp_path / "dot-ssh")) as b:
            with pytest.raises(NoSpaceError) as err:
                provision(b, stage_needs(stage(tiny)))
    assert "no space left" in str(err.value) and err.value.exit_code == 2
    assert envs_of(small_disk) == []


def test_no_space_for_the_wheels_sent_leaves_nothing(
    small_disk: Path, python_b: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment fits, the 20 MiB wheel sent over SFTP does not (estimates set too low to stop it).
    site = tmp_path / "a" / "site-packages"
    install_here(build_tiny_wheel(tmp_path / "build", name="wpbig", data=os.urandom(20 << 20)), site)
    monkeypatch.syspath_prepend(str(site))
    _mount_tmpfs(small_disk, "36m")
    monkeypatch.setattr(provision_module, "_ENV_BASE_BYTES", 1 << 20)
    monkeypatch.setattr(provision_module, "_estimate", lambda needs: 1 << 20)
    try:
        big = importlib.import_module("wpbig")

        def uses_big(x: int) -> str:
            return str(big.render(x))

        with host_b(small_disk, index=False) as server:
            with RemoteExecutor(spec_of(server, python_b, tmp_path / "dot-ssh")) as b:
                with pytest.raises(NoSpaceError) as err:
                    provision(b, stage_needs(uses_big), offline=True)
    finally:
        sys.modules.pop("wpbig", None)
    assert "no space left" in str(err.value) and "wpbig-1.2.3-py3-none-any.whl" in str(err.value)
    assert envs_of(small_disk) == []


def _other_minor() -> str | None:
    """A working Python 3 of another minor version than ours, if this machine has one."""
    candidates = [str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.*/bin/python3"))]
    candidates += [c for c in (shutil.which(f"python3.{m}") for m in range(8, 15)) if c]
    for candidate in candidates:
        try:
            got = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[1])"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if got.isdigit() and int(got) != sys.version_info[1]:
            return candidate
    return None


def test_another_python_minor_on_b_is_named(tiny: Any, offline_b: tuple[LocalSshd, Path], tmp_path: Path) -> None:
    other = _other_minor()
    if other is None:
        pytest.skip("no Python of another minor version on this machine")
    server, cache = offline_b
    with RemoteExecutor(spec_of(server, other, tmp_path / "dot-ssh")) as b:
        with pytest.raises(PythonMismatchError) as err:
            provision(b, stage_needs(stage(tiny)))
    here = "%d.%d" % sys.version_info[:2]
    assert "same major.minor" in str(err.value) and f"Python {here}" in str(err.value)
    assert envs_of(cache) == []
