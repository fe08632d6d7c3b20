"""Opening the plan's hosts for a run: the connector every process of the run uses, and a preflight."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wiredprof.config import ProjectConfig
from wiredprof.errors import ConnectError, HostUnreachableError, WiredprofError
from wiredprof.offload.entries import OffloadEntry, read_offloads
from wiredprof.offload.runtime import OffloadRuntime

if TYPE_CHECKING:  # the protocol's module imports paramiko: not at run time
    from wiredprof.remote.executor import Executor

__all__ = ["HostConnector", "open_runtime"]


class HostConnector:
    """Connects to a host of the project (a plain object: it travels to spawned processes by reference)."""

    def __init__(self, project: Any, accept_new: bool) -> None:
        self.project = project
        self.accept_new = accept_new

    def __call__(self, host: str) -> Executor:
        from wiredprof.remote import connect

        # Lazy: a pipeline process connects at its first call, and a host that is down
        # there is then retried with backoff by the same executor (its circuit breaker).
        return connect(host, project=self.project, accept_new=self.accept_new, lazy=True)


def open_runtime(
    config: ProjectConfig, entries: dict[str, OffloadEntry] | None = None, accept_new: bool = False
) -> OffloadRuntime | None:
    """An `OffloadRuntime` for the project's plan, each host connected once now (preflight).

    Connecting up front reports an unknown host, an untrusted key, an auth failure or a
    Python mismatch before the flow starts, in one line.
    """
    entries = read_offloads(config) if entries is None else entries
    if not entries:
        return None
    runtime = OffloadRuntime(entries, connect=HostConnector(config.root, accept_new))
    for host in sorted({e.host for e in entries.values()}):
        try:
            runtime.executor(host).connect()
        except ConnectError as exc:
            runtime.close()
            raise HostUnreachableError(f"host {host} is unreachable: {exc}") from None
        except WiredprofError:
            runtime.close()
            raise
    return runtime
