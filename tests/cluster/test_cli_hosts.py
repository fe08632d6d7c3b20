"""`wiredprof hosts add|list|check|remove` on a Dask host, against a real loopback cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wiredprof.cli import cli
from wiredprof.testing.localcluster import LocalDaskCluster

pytestmark = [pytest.mark.dask, pytest.mark.timeout(180)]


def run(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["hosts", "-C", str(project), *args])
    return result.exit_code, result.output


def test_add_check_list_remove(tmp_path: Path, dask_cluster: LocalDaskCluster) -> None:
    code, out = run(tmp_path, "add", "cluster", "--dask", dask_cluster.address)
    assert code == 0, out
    assert f'dask = "{dask_cluster.address}"' in (tmp_path / "wiredprof.toml").read_text()
    code, out = run(tmp_path, "check", "cluster", "--json")
    assert code == 0, out
    probe = json.loads(out)
    assert probe["schema"] == "wiredprof.probe/1" and probe["cores"] == 2
    workers = probe["dask"]["workers"]
    assert sorted(w["address"] for w in workers) == dask_cluster.wait_for_workers(2)
    assert all(w["threads"] == 1 and w["cpu_speed_ratio"] > 0 for w in workers)
    assert probe["rtt_s"] > 0 and probe["bandwidth_bytes_per_s"] > 0
    assert probe["dask"]["packages"]["distributed"]["here"] == probe["dask"]["packages"]["distributed"]["workers"]
    code, out = run(tmp_path, "list")
    assert code == 0 and dask_cluster.address in out and "never" not in out
    code, out = run(tmp_path, "check", "cluster")
    assert code == 0 and "task round trip" in out and "memory limit" in out
    code, out = run(tmp_path, "remove", "cluster")
    assert code == 0 and not (tmp_path / ".wiredprof" / "hosts" / "cluster.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dask", "tcp://nohost"], "give the scheduler's host and port"),
        (["--dask", "http://a:1"], "scheme must be one of tcp, tls, ws, wss"),
        (["--dask", "tcp://a:1", "--address", "u@h"], "not both"),
        (["--dask", "tls://a:1", "--cert", "c.pem"], "give both --cert and --key"),
        (["--ca-file", "ca.pem"], "give --dask tls://HOST:PORT too"),
        ([], "give --address USER@HOST[:PORT] (an SSH host) or --dask"),
    ],
)
def test_bad_dask_host_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, out = run(tmp_path, "add", "cluster", *args)
    assert code == 2 and message in out and out.count("\n") == 1, out


def test_tls_files_are_recorded_and_must_exist(tmp_path: Path) -> None:
    code, out = run(tmp_path, "add", "secure", "--dask", "tls://127.0.0.1:1", "--ca-file", "ca.pem",
                    "--cert", "me.pem", "--key", "me.key")
    assert code == 0, out
    text = (tmp_path / "wiredprof.toml").read_text()
    assert 'ca_file = "ca.pem"' in text and 'key = "me.key"' in text
    code, out = run(tmp_path, "check", "secure")
    assert code == 2 and "`ca_file`" in out and "is not a file" in out and out.count("\n") == 1


def test_unreachable_scheduler_fails_the_check(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "wiredprof.toml").write_text(f'[hosts.gone]\ndask = "tcp://127.0.0.1:{port}"\n')
    code, out = run(tmp_path, "check", "gone")
    assert code == 1 and "cannot reach the Dask scheduler of gone" in out and out.count("\n") == 1


_BLOCK_DASK = """
import sys
class _NoDask:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError("blocked for this test: No module named " + repr(name))
        return None
sys.meta_path.insert(0, _NoDask())
"""


def test_a_dask_host_without_the_extra_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "wiredprof.toml").write_text('[hosts.cluster]\ndask = "tcp://127.0.0.1:8786"\n')
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_BLOCK_DASK)
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", "from wiredprof.cli import main; main()", "hosts", "check", "cluster"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "host cluster is a Dask cluster" in result.stderr and "pip install 'wiredprof[dask]'" in result.stderr


@pytest.mark.filterwarnings("error")
def test_workers_of_another_python_are_refused_in_one_line(tmp_path: Path) -> None:
    from wiredprof.testing.localcluster import start_local_cluster

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(  # the worker reports Python 3.8.10 to the scheduler
        "import collections, sys\n"
        "V = collections.namedtuple('version_info', 'major minor micro releaselevel serial')\n"
        "sys.version_info = V(3, 8, 10, 'final', 0)\n"
    )
    cluster = start_local_cluster(workers=0)
    try:
        cluster.add_worker(env={"PYTHONPATH": str(site)})
        cluster.wait_for_workers(1)
        (tmp_path / "wiredprof.toml").write_text(f'[hosts.old]\ndask = "{cluster.address}"\n')
        code, out = run(tmp_path, "check", "old")
        assert code == 2 and "the Dask workers run Python 3.8.10" in out and out.count("\n") == 1, out
    finally:
        cluster.stop()


def test_a_cluster_without_workers_fails_the_check_in_one_line(tmp_path: Path) -> None:
    from wiredprof.testing.localcluster import start_local_cluster

    cluster = start_local_cluster(workers=0)
    try:
        (tmp_path / "wiredprof.toml").write_text(f'[hosts.empty]\ndask = "{cluster.address}"\n')
        code, out = run(tmp_path, "check", "empty")
        assert code == 1 and "has no worker: start one" in out and out.count("\n") == 1, out
    finally:
        cluster.stop()


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and one certificate for 127.0.0.1 signed by it (scheduler, workers, client)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wiredprof test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(hours=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.pem", directory / "node.pem", directory / "node.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_a_tls_cluster_with_the_files_of_the_inventory(tmp_path: Path) -> None:
    from wiredprof.testing.localcluster import start_local_cluster

    ca, cert, key = write_tls_files(tmp_path)
    cluster = start_local_cluster(workers=1, tls=(ca, cert, key))
    try:
        assert cluster.address.startswith("tls://")
        code, out = run(tmp_path, "add", "secure", "--dask", cluster.address, "--ca-file", "ca.pem",
                        "--cert", "node.pem", "--key", "node.key")  # relative to the project
        assert code == 0, out
        code, out = run(tmp_path, "check", "secure", "--json")
        assert code == 0, out
        assert json.loads(out)["dask"]["workers"][0]["threads"] == 1
        (tmp_path / "wiredprof.toml").write_text(
            f'[hosts.plain]\ndask = "{cluster.address}"\n\n'
            f'[hosts.stranger]\ndask = "{cluster.address}"\nca_file = "ca.pem"\ncert = "other.pem"\nkey = "other.key"\n'
        )
        code, out = run(tmp_path, "check", "plain")
        assert code == 2 and "is TLS: give `ca_file`, `cert` and `key`" in out and out.count("\n") == 1, out
        other = tmp_path / "other"
        other.mkdir()
        _, other_cert, other_key = write_tls_files(other)  # signed by another CA: the scheduler refuses it
        other_cert.rename(tmp_path / "other.pem")
        other_key.rename(tmp_path / "other.key")
        code, out = run(tmp_path, "check", "stranger")
        assert code == 1 and "cannot reach the Dask scheduler of stranger" in out and out.count("\n") == 1, out
    finally:
        cluster.stop()
