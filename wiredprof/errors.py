"""The exceptions wiredprof raises; each carries the one line a user needs.

`UsageError` and its subclasses mean bad input: the CLI prints their message on one
line and exits 2, with no traceback.
"""
from __future__ import annotations

__all__ = [
    "WiredprofError",
    "UsageError",
    "FlowFileError",
    "ProfileFileError",
    "NoStagesError",
    "WorkFailed",
    "ConfigError",
    "UnknownHostError",
    "HostUnreachableError",
    "HostKeyError",
    "UnknownHostKeyError",
    "HostKeyChangedError",
    "AuthError",
    "ConnectError",
    "PythonMismatchError",
    "PickleError",
    "RemoteError",
    "MissingModuleError",
    "LinkError",
    "WorkerLostError",
    "LinkSilentError",
    "FrameError",
    "CallTimeoutError",
    "CircuitOpenError",
    "NotSshError",
    "WorkerStartError",
    "link_failure",
]


class WiredprofError(Exception):
    """Base of every error wiredprof raises on purpose."""

    exit_code = 1


class UsageError(WiredprofError):
    """Bad input: a wrong argument, a missing or broken file. Exit 2."""

    exit_code = 2


class FlowFileError(UsageError):
    """The flow file is missing or raised before any stage ran."""


class ProfileFileError(UsageError):
    """A saved profile is missing, corrupt, or not a wiredprof profile."""


class NoStagesError(UsageError):
    """The flow ran but wiredprof saw no pipeline stage in it."""


class FlowNeverStartedError(NoStagesError):
    """The flow did not start its pipelines (no `launch_flow`, no stage) within the start limit."""


class WorkFailed(WiredprofError):
    """The work itself failed (exit 1), e.g. a regression past the allowed limit."""


class ConfigError(UsageError):
    """The project configuration (wiredprof.toml / [tool.wiredprof]) is malformed."""


class UnknownHostError(UsageError):
    """A host name that is neither in the inventory nor a Host of ~/.ssh/config."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = ", ".join(known) if known else "none"
        super().__init__(
            f"unknown host {name!r} (known: {listed}); "
            f"add it with `wiredprof hosts add {name} --address USER@HOST`"
        )


class HostUnreachableError(UsageError):
    """The host did not answer (no route, refused, timed out): a one-line usage error for commands."""


class HostKeyError(UsageError):
    """The server's host key could not be trusted; nothing was sent to it."""

    def __init__(self, message: str, host: str, fingerprint: str) -> None:
        self.host = host
        self.fingerprint = fingerprint
        super().__init__(message)


class UnknownHostKeyError(HostKeyError):
    """No known_hosts entry for this server; the user must accept the key explicitly."""


class HostKeyChangedError(HostKeyError):
    """The server offered a key different from the recorded one: always refused."""


class AuthError(UsageError):
    """The server refused every key we could offer."""


class LinkError(WiredprofError):
    """A failure of wiredprof's transport, never of the stage's own code: host or link lost,
    link silent, bad frame, timeout, no connection.

    `started` says whether host B had started the call: False (certainly not: it may be
    retried or run locally), True (it had), None (unknown: it may have). Only calls with
    `started is False` are re-run, unless the offload entry says `idempotent = true`.
    """

    started: bool | None = None

    def __init__(self, message: str, started: bool | None = None) -> None:
        super().__init__(message)
        self.started = started


class ConnectError(LinkError):
    """The host could not be reached or the SSH session could not be set up."""

    started: bool | None = False

    def __init__(self, message: str, started: bool | None = False) -> None:
        super().__init__(message, started)


class NotSshError(ConnectError):
    """The address answers but does not speak SSH: a wrong port, most likely (bad input, exit 2)."""

    exit_code = 2


class WorkerStartError(ConnectError):
    """The worker's Python started on the host but ended before the worker ran (exit 2: check `python`)."""

    exit_code = 2


class CircuitOpenError(ConnectError):
    """Too many link failures in a row: calls skip the host for a cool-down."""


class PythonMismatchError(UsageError):
    """The remote Python's major.minor differs from the local one (pickles would not load)."""


class PickleError(UsageError):
    """An argument, closure variable or global of a shipped function cannot be pickled.

    `path` names the object, e.g. "argument 'conf' ['db']" or "closure variable 'gen' of f".
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class RemoteError(WiredprofError):
    """A remote call failed and its exception could not be re-created here.

    `remote_type` is the qualified name of the remote exception type, `remote_traceback`
    the formatted traceback from host B.
    """

    def __init__(
        self, message: str, remote_type: str = "", remote_traceback: str = "", host: str = ""
    ) -> None:
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        self.host = host
        super().__init__(message)


class MissingModuleError(RemoteError):
    """A module the shipped code imports by reference is not installed on the remote host."""

    def __init__(self, message: str, module: str, host: str = "", remote_traceback: str = "") -> None:
        self.module = module
        super().__init__(message, "ModuleNotFoundError", remote_traceback, host)


class WorkerLostError(LinkError):
    """The remote worker died or the link dropped while calls were pending."""


class LinkSilentError(WorkerLostError):
    """Nothing came from the host for longer than its `dead_after_s`: the link is dead."""


class FrameError(WorkerLostError):
    """A frame with a bad magic, an unknown kind or a length over the limit: the session ends."""


class CallTimeoutError(LinkError, TimeoutError):
    """A remote call did not finish within its timeout."""


def link_failure(exc: BaseException) -> LinkError | None:
    """`exc` as a wiredprof link failure, or None when it is anything else.

    A stage's own exception is never one, even when its type is a wiredprof class (a stage
    may itself use wiredprof): the session marks re-raised remote exceptions as the stage's.
    """
    if isinstance(exc, LinkError) and getattr(exc, "wiredprof_origin", None) != "stage":
        return exc
    return None
