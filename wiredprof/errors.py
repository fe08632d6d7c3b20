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


class WorkFailed(WiredprofError):
    """The work itself failed (exit 1), e.g. a regression past the allowed limit."""
