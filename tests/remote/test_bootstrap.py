"""The zero-install bootstrap: Python version check, cloudpickle shipped only when needed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import cloudpickle
import pytest

from wiredprof.errors import ConnectError, PythonMismatchError
from wiredprof.remote import connect
from wiredprof.remote.bootstrap import BOOTSTRAP, bootstrap_command
from wiredprof.remote.spec import HostSpec

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]


def test_bootstrap_is_one_shell_safe_command() -> None:
    command = bootstrap_command("/usr/bin/python3")
    assert command.startswith("exec /usr/bin/python3 -c '")
    assert "os.dup2(2,1)" in BOOTSTRAP  # stray prints go to stderr, not into the frames


def test_python_mismatch_is_reported_in_one_line(make_spec: Callable[..., HostSpec], tmp_path: Path) -> None:
    liar = tmp_path / "python3.8"
    liar.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "sys.version_info = (3, 8, 10, 'final', 0)\n"
        "exec(compile(sys.argv[2], '<string>', 'exec'))\n"
    )
    liar.chmod(0o755)
    with pytest.raises(PythonMismatchError) as info:
        connect(make_spec(python=str(liar)))
    message = str(info.value)
    assert "\n" not in message
    assert "Python 3.8.10" in message and "%d.%d" % sys.version_info[:2] in message
    assert "[hosts.B]" in message


def test_missing_python_is_a_clear_connect_error(make_spec: Callable[..., HostSpec]) -> None:
    with pytest.raises(ConnectError, match="could not start `/nonexistent/python3`"):
        connect(make_spec(python="/nonexistent/python3"))


def test_cloudpickle_is_shipped_only_when_b_lacks_it(make_spec: Callable[..., HostSpec]) -> None:
    with connect(make_spec(python=sys.executable)) as b:  # our interpreter has cloudpickle
        assert b.hello.cloudpickle_remote == cloudpickle.__version__
        assert not b.hello.cloudpickle_shipped
    with connect(make_spec(python=sys.executable)) as b:
        assert b.call(lambda: __import__("cloudpickle").__file__).endswith("__init__.py")


def test_worker_without_cloudpickle_gets_it_over_the_channel(spec: HostSpec) -> None:
    with connect(spec) as b:
        if b.hello.cloudpickle_remote is not None:
            pytest.skip(f"{spec.python} has cloudpickle installed")
        assert b.hello.cloudpickle_shipped and b.hello.cloudpickle_used == cloudpickle.__version__
        assert b.call(lambda: __import__("cloudpickle").__file__) == "<wiredprof-shipped cloudpickle>"


def test_other_cloudpickle_version_on_b_is_replaced_by_ours(
    make_spec: Callable[..., HostSpec], python_b: str, tmp_path: Path
) -> None:
    old = tmp_path / "old_site" / "cloudpickle"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text('__version__ = "0.0.1"\nraise ImportError("too old to load")\n')
    wrapper = tmp_path / "python-with-old-cloudpickle"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={old.parent} exec {python_b} "$@"\n')
    wrapper.chmod(0o755)
    with connect(make_spec(python=str(wrapper))) as b:
        assert b.hello.cloudpickle_remote == "0.0.1"
        assert b.hello.cloudpickle_shipped and b.hello.cloudpickle_used == cloudpickle.__version__
        assert b.call(lambda x: x + 1, 1) == 2
