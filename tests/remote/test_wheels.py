"""Wheels made here for a host without an index: rebuilt from installed files, or refused by name."""
from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.tags import Tag

from tests.remote.hostb import build_tiny_wheel, closed_port, install_here
from wiredprof.remote.requirements import Distribution
from wiredprof.remote.wheels import NoWheelError, installed_tags, platform_tags, rebuild_wheel, wheel_for

B_TAGS = platform_tags((3, 11), "linux-x86_64", "x86_64", "2.36")


def test_b_platform_tags_follow_its_glibc() -> None:
    assert B_TAGS.platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux2014_x86_64" in B_TAGS.platforms and B_TAGS.platforms[-1] == "linux_x86_64"
    tags = set(B_TAGS.tags())
    assert Tag("cp311", "cp311", "manylinux_2_17_x86_64") in tags and Tag("py3", "none", "any") in tags
    assert Tag("cp311", "cp311", "manylinux_2_38_x86_64") not in tags  # newer glibc than B's
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") not in tags
    old = set(platform_tags((3, 11), "linux-aarch64", "aarch64", "2.17").tags())
    assert Tag("cp311", "cp311", "manylinux2014_aarch64") in old and Tag("py3", "none", "any") in old


def test_a_rebuilt_wheel_installs_with_the_same_files(tmp_path: Path) -> None:
    dist = importlib.metadata.distribution("tabulate")
    wheel = rebuild_wheel(dist, Tag("py3", "none", "any"), tmp_path)
    assert wheel.name == f"tabulate-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert not any(n.endswith(".pyc") or n.startswith("..") for n in names)
        assert f"tabulate-{dist.version}.dist-info/RECORD" in names
    target = tmp_path / "site-packages"
    install_here(wheel, target)
    original = Path(str(dist.locate_file("tabulate/__init__.py"))).read_bytes()
    assert (target / "tabulate" / "__init__.py").read_bytes() == original
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
                          "import tabulate; print(tabulate.__file__, tabulate.__version__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == [str(target / "tabulate" / "__init__.py"), dist.version], out.stderr


def test_a_compiled_distribution_is_rebuilt_when_b_accepts_its_tag(tmp_path: Path) -> None:
    dist = importlib.metadata.distribution("cffi")  # compiled, from a manylinux wheel here
    tags = installed_tags(dist)
    assert tags and all(t.platform != "any" for t in tags)
    wheel, how = wheel_for(Distribution("cffi", dist.version), B_TAGS, tmp_path)
    assert how == "rebuilt" and wheel.name.endswith(f"-{tags[0]}.whl")


def test_no_wheel_for_b_is_refused_naming_the_distribution_and_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_tiny_wheel(tmp_path / "build", name="wptinywin", version="1.0", tag="cp311-cp311-win_amd64")
    site = tmp_path / "a" / "site-packages"
    install_here(wheel, site, "--platform", "win_amd64", "--only-binary=:all:", "--python-version", "3.11",
                 "--implementation", "cp", "--abi", "cp311")
    monkeypatch.syspath_prepend(str(site))
    # This side's pip reaches no index either: the refusal needs no network.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    try:
        importlib.import_module("wptinywin")
        with pytest.raises(NoWheelError) as err:
            wheel_for(Distribution("wptinywin", "1.0"), B_TAGS, tmp_path)
    finally:
        sys.modules.pop("wptinywin", None)
    message = str(err.value)
    assert "wptinywin==1.0" in message and "cp311, manylinux_2_36_x86_64" in message and "win_amd64" in message
    assert err.value.exit_code == 2 and "\n" not in message
