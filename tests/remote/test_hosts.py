"""Host names to specs: inventory over ~/.ssh/config, as fabric resolves them (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiredprof.errors import UnknownHostError
from wiredprof.remote.hosts import list_hosts, resolve_host
from wiredprof.remote.spec import HostSpec, parse_address


def test_parse_address() -> None:
    assert parse_address("me@big.example:2222") == ("me", "big.example", 2222)
    assert parse_address("big") == (None, "big", None)
    assert parse_address("me@[::1]:22") == ("me", "::1", 22)
    with pytest.raises(ValueError):
        parse_address("me@")


def test_inventory_entry_over_ssh_config(tmp_path: Path, _isolated_ssh: Path) -> None:
    (_isolated_ssh / "config").write_text(
        "Host big\n  HostName 10.0.0.5\n  User deploy\n  Port 2200\n  IdentityFile ~/keys/big\n"
        "Host jumpbox\n  HostName 10.0.0.1\n  User hop\n"
        "Host inner\n  HostName 10.1.0.9\n  ProxyJump jumpbox\n"
    )
    (tmp_path / "wiredprof.toml").write_text(
        '[hosts.B]\naddress = "big"\npython = "/opt/py/bin/python3"\nidentity = "keys/b"\n'
        '[hosts.B2]\naddress = "root@big:22"\n'
    )
    spec = resolve_host("B", project=tmp_path)
    assert (spec.hostname, spec.user, spec.port, spec.python) == (
        "10.0.0.5",
        "deploy",
        2200,
        "/opt/py/bin/python3",
    )
    assert spec.identity_files == (tmp_path / "keys" / "b", Path("~/keys/big").expanduser())
    assert spec.known_hosts_name == "[10.0.0.5]:2200" and spec.user_known_hosts == (
        _isolated_ssh / "known_hosts",
    )
    explicit = resolve_host("B2", project=tmp_path)
    assert (explicit.user, explicit.port, explicit.known_hosts_name) == ("root", 22, "10.0.0.5")
    inner = resolve_host("inner", project=tmp_path)
    assert inner.proxy_jump is not None and inner.proxy_jump.hostname == "10.0.0.1"
    assert inner.proxy_jump.user == "hop"
    names = [h.name for h in list_hosts(project=tmp_path)]
    assert names == ["B", "B2", "big", "inner", "jumpbox"]


def test_unknown_host_lists_known_ones(tmp_path: Path) -> None:
    (tmp_path / "wiredprof.toml").write_text('[hosts.B]\naddress = "a@b"\n')
    with pytest.raises(UnknownHostError, match=r"unknown host 'Z' \(known: B\)"):
        resolve_host("Z", project=tmp_path)


def test_direct_spec() -> None:
    spec = HostSpec.direct("me@127.0.0.1", port=2222, identity="/k", known_hosts="/kh")
    assert spec.address == "me@127.0.0.1:2222" and spec.identity_files == (Path("/k"),)
    assert spec.user_known_hosts == (Path("/kh"),) and not spec.look_for_keys
