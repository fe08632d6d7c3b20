"""`wiredprof hosts add|list|check|remove`, in-process with click's CliRunner, against a real sshd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wiredprof.cli import cli
from wiredprof.testing.localsshd import LocalSshd

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]


def run(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["hosts", "-C", str(project), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def add_b(project: Path, sshd: LocalSshd, python_b: str, known_hosts: Path | None = None) -> None:
    code, out = run(
        project,
        "add",
        "B",
        "--address",
        f"{sshd.user}@127.0.0.1:{sshd.port}",
        "--identity",
        str(sshd.identity),
        "--python",
        python_b,
        "--known-hosts",
        str(known_hosts or sshd.known_hosts),
    )
    assert code == 0, out


def test_add_list_remove(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    add_b(tmp_path, sshd, python_b)
    assert "[hosts.B]" in (tmp_path / "wiredprof.toml").read_text()
    code, out = run(tmp_path, "list")
    assert code == 0 and "B" in out and f"127.0.0.1:{sshd.port}" in out and "never" in out
    code, out = run(tmp_path, "list", "--json")
    assert json.loads(out)["hosts"][0]["name"] == "B"
    code, out = run(tmp_path, "add", "B", "--address", "x@y")
    assert code == 2 and "already in" in out and out.count("\n") == 1
    code, out = run(tmp_path, "remove", "B")
    assert code == 0
    code, out = run(tmp_path, "remove", "B")
    assert code == 2 and "unknown host 'B'" in out


def test_bad_address_is_a_usage_error(tmp_path: Path) -> None:
    code, out = run(tmp_path, "add", "B", "--address", "me@host:99999")
    assert code == 2 and "port out of range" in out and out.count("\n") == 1


def test_check_unknown_host_lists_the_known_ones(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    add_b(tmp_path, sshd, python_b)
    code, out = run(tmp_path, "check", "C")
    assert code == 2 and "unknown host 'C' (known: B)" in out


def test_check_probes_saves_and_lists(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    add_b(tmp_path, sshd, python_b)
    code, out = run(tmp_path, "check", "B", "--json")
    assert code == 0, out
    probe = json.loads(out)
    assert probe["schema"] == "wiredprof.probe/1" and probe["cores"] >= 1
    assert probe["cpu_speed_ratio"] > 0 and probe["rtt_s"] > 0 and probe["bandwidth_bytes_per_s"] > 0
    saved = json.loads((tmp_path / ".wiredprof" / "hosts" / "B.json").read_text())
    assert saved["python"] == probe["python"]
    code, out = run(tmp_path, "list")
    assert code == 0 and "never" not in out and "x" in out


def test_check_refuses_an_unknown_key_until_accepted(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    known = tmp_path / "my_known_hosts"
    add_b(tmp_path, sshd, python_b, known_hosts=known)
    code, out = run(tmp_path, "check", "B")
    assert code == 2 and "--accept-new" in out and sshd.host_key_fingerprint in out
    code, out = run(tmp_path, "check", "B", "--accept-new", "--no-save")
    assert code == 0, out
    assert "cpu speed vs here" in out and f"[127.0.0.1]:{sshd.port}" in known.read_text()
    code, out = run(tmp_path, "check", "B", "--no-save")
    assert code == 0


def test_check_auth_failure_is_one_line(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    missing = tmp_path / "no_such_key"
    code, out = run(
        tmp_path,
        "add",
        "B",
        "--address",
        f"{sshd.user}@127.0.0.1:{sshd.port}",
        "--identity",
        str(missing),
        "--python",
        python_b,
        "--known-hosts",
        str(sshd.known_hosts),
    )
    assert code == 0
    code, out = run(tmp_path, "check", "B")
    assert code == 2 and "authentication to B" in out and "does not exist" in out and out.count("\n") == 1


def test_check_python_mismatch_is_one_line(tmp_path: Path, sshd: LocalSshd) -> None:
    import sys

    liar = tmp_path / "python3.9"
    liar.write_text(
        f"#!{sys.executable}\nimport sys\nsys.version_info = (3, 9, 1, 'final', 0)\n"
        "exec(compile(sys.argv[2], '<string>', 'exec'))\n"
    )
    liar.chmod(0o755)
    add_b(tmp_path, sshd, str(liar))
    code, out = run(tmp_path, "check", "B")
    assert code == 2 and "Python 3.9.1" in out and out.count("\n") == 1


def test_hosts_from_ssh_config(tmp_path: Path, sshd: LocalSshd, python_b: str, _isolated_ssh: Path) -> None:
    (_isolated_ssh / "config").write_text(
        f"Host bigbox\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.identity}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        "Host *.example\n  User nobody\n"
    )
    code, out = run(tmp_path, "list")
    assert code == 0 and "bigbox" in out and "example" not in out
    code, out = run(tmp_path, "check", "bigbox", "--json", "--no-save")
    assert code == 0, out
    assert json.loads(out)["host"] == "bigbox"
    code, out = run(tmp_path, "remove", "bigbox")
    assert code == 2 and "does not edit" in out


def test_check_refuses_a_changed_key_even_with_accept_new(
    tmp_path: Path, sshd: LocalSshd, python_b: str
) -> None:
    from wiredprof.testing.localsshd import write_ed25519_key

    public = write_ed25519_key(tmp_path / "impostor").split()
    known = tmp_path / "known_hosts_old"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    add_b(tmp_path, sshd, python_b, known_hosts=known)
    for extra in ((), ("--accept-new",)):
        code, out = run(tmp_path, "check", "B", *extra)
        assert code == 2 and "has CHANGED" in out and "of B" in out and out.count("\n") == 1


def test_proxy_jump_from_ssh_config(
    tmp_path: Path, sshd: LocalSshd, python_b: str, _isolated_ssh: Path
) -> None:
    (_isolated_ssh / "config").write_text(
        f"Host inner\n  HostName 127.0.0.1\n  Port {sshd.port}\n  ProxyJump hop\n"
        f"Host hop\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        f"Host *\n  User {sshd.user}\n  IdentityFile {sshd.identity}\n"
        f"  UserKnownHostsFile {sshd.known_hosts}\n"
    )
    (tmp_path / "wiredprof.toml").write_text(f'[hosts.B]\naddress = "inner"\npython = "{python_b}"\n')
    code, out = run(tmp_path, "check", "B", "--json", "--no-save")
    assert code == 0, out
    assert json.loads(out)["python"].startswith("3.")


def test_add_goes_under_tool_wiredprof_when_pyproject_has_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\n\n[tool.wiredprof]\n# hosts below\n')
    code, out = run(tmp_path, "add", "B", "--address", "me@big:2222")
    assert code == 0, out
    text = (tmp_path / "pyproject.toml").read_text()
    assert "[tool.wiredprof.hosts.B]" in text and "# hosts below" in text
    assert not (tmp_path / "wiredprof.toml").exists()


def test_check_a_port_that_speaks_no_ssh_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts TCP, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        run(tmp_path, "add", "B", "--address", f"me@127.0.0.1:{port}")
        code, out = run(tmp_path, "check", "B")
    assert code == 2 and "does not speak SSH" in out and out.count("\n") == 1, out
    assert "Traceback" not in out


def test_check_a_worker_dying_during_start_up_is_one_line(tmp_path: Path, sshd: LocalSshd) -> None:
    import sys

    # Says the right version line, then dies before the worker runs.
    dies = tmp_path / "python-that-dies"
    dies.write_text(
        "#!/bin/sh\n"
        f"echo 'wiredprof-worker {sys.version_info[0]} {sys.version_info[1]} {sys.version_info[2]} $$ /x'\n"
        "echo 'out of memory, say' >&2\nexit 3\n"
    )
    dies.chmod(0o755)
    add_b(tmp_path, sshd, str(dies))
    code, out = run(tmp_path, "check", "B")
    assert code == 2 and out.count("\n") == 1, out
    assert "ended during start-up" in out and "exit status 3" in out and "out of memory, say" in out
    assert "Aborted" not in out


def test_a_python_path_with_a_space_works(tmp_path: Path, sshd: LocalSshd, python_b: str) -> None:
    spaced = tmp_path / "my pythons" / "python3"
    spaced.parent.mkdir()
    spaced.symlink_to(python_b)
    add_b(tmp_path, sshd, str(spaced))
    code, out = run(tmp_path, "check", "B", "--no-save")
    assert code == 0, out
