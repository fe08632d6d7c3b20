"""Run a Python callable on another host over SSH: zero-install worker, cloudpickle, paramiko.

from wiredprof.remote import connect
with connect("B") as b:
    b.call(fn, *args, **kwargs)
    fut = b.submit(fn, x)

Modules, one job each (host A's side unless said):
spec          HostSpec: everything needed to reach a host, resolved, no I/O
hosts         host names to HostSpecs: wiredprof.toml, then ~/.ssh/config
transport     one authenticated paramiko Transport, host keys checked like OpenSSH
bootstrap     start the worker over one exec channel; Python version check
frames        length-prefixed frames over the channel
worker        host B's side, shipped as source: stdlib + cloudpickle only
serialize     what travels by value, by reference, or stays here behind a proxy
statefulness  does a callable keep state between calls (that would live on B)
session       one live worker: calls out, results back, proxies served, death noticed
executor      RemoteExecutor (and the Executor protocol a Dask executor could follow)
probe         cores, memory, CPU speed vs here, RTT, bandwidth of a host
requirements  what a stage needs on a host: third-party distributions at A's versions
wheels        wheels for a host without an index: rebuilt from A's files, or pip download
hostenv       what B's Python is and has, compared with a stage's needs
envdirs       the environment directories on B (run there by the worker)
provision     a private environment on B with A's exact versions

(A throwaway sshd on 127.0.0.1 for tests and the demo: `wiredprof.testing.localsshd`.)
"""

from __future__ import annotations

import os
from typing import Any

from wiredprof.remote.executor import Executor, RemoteExecutor
from wiredprof.remote.serialize import keep_on_host_a
from wiredprof.remote.session import OutputSink
from wiredprof.remote.spec import HostSpec
from wiredprof.remote.statefulness import is_stateful, stateful_reasons

__all__ = [
    "connect",
    "Executor",
    "RemoteExecutor",
    "HostSpec",
    "OutputSink",
    "keep_on_host_a",
    "is_stateful",
    "stateful_reasons",
]


def connect(
    host: str | HostSpec,
    *,
    project: str | os.PathLike[str] | None = None,
    ssh_dir: str | os.PathLike[str] | None = None,
    accept_new: bool = False,
    call_timeout: float | None = None,
    output: OutputSink | None = None,
    lazy: bool = False,
    **options: Any,
) -> RemoteExecutor:
    """An executor on `host`: a name from wiredprof.toml or ~/.ssh/config, or a `HostSpec`.

    Connects at once (so a bad host, key or Python is reported here) unless `lazy`.
    `options` go to `RemoteExecutor` (`prompt`, `max_threads`).
    """
    if isinstance(host, str):
        from wiredprof.cluster.spec import dask_host
        from wiredprof.remote.hosts import resolve_host

        dask = dask_host(host, project)
        if dask is not None:  # a Dask cluster: the same Executor protocol (wiredprof.cluster)
            from wiredprof.cluster.executor import DaskExecutor

            cluster = DaskExecutor(dask, call_timeout=call_timeout)
            return cluster if lazy else cluster.connect()  # type: ignore[return-value]

        spec = resolve_host(host, project=project, ssh_dir=ssh_dir)
    else:
        spec = host
    executor = RemoteExecutor(
        spec, accept_new=accept_new, call_timeout=call_timeout, output=output, **options
    )
    if not lazy:
        try:
            executor.connect()
        except BaseException:
            executor.close()
            raise
    return executor
