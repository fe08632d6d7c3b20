"""The processes a run started, found from /proc and stopped by PID: nothing is left behind.

A flow may start processes in any way (multiprocessing fork, spawn or forkserver, a
`Pool`, `concurrent.futures`, `subprocess`), and those may start more. While a run lasts,
this process is made a "child subreaper" (Linux `PR_SET_CHILD_SUBREAPER`), so a process
whose parent died is re-parented here instead of to init: the tree stays findable by
walking parent ids in /proc. At the end, every descendant that did not exist before the
run gets SIGTERM, then SIGKILL after a grace period, and the zombies are reaped.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import time
from collections.abc import Iterable

__all__ = ["ProcessTree", "alive", "descendants", "process_start", "set_subreaper"]

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"  # type: ignore[index]


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): tells a process from a later one with its PID."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def _parents() -> dict[int, int]:
    """PID -> parent PID of every live (non-zombie) process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields and len(fields) > 1 and fields[0] != "Z":
            out[int(name)] = int(fields[1])
    return out


def descendants(root: int | None = None) -> list[int]:
    """Live descendants of `root` (default: this process), parents before children."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    out: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def set_subreaper(on: bool) -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _is_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        value = ctypes.c_int(0)
        if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
            return False
        return bool(value.value)
    except (OSError, AttributeError):
        return False


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass  # not our child, or already reaped


class ProcessTree:
    """The processes started under this one during a run; `stop()` ends every one of them."""

    def __init__(self, keep: Iterable[int] = ()) -> None:
        self.root = os.getpid()
        self.keep = set(keep)
        self._before = self._snapshot()
        self._was_subreaper = _is_subreaper()
        self.subreaper = False

    @staticmethod
    def _snapshot() -> set[tuple[int, int | None]]:
        return {(pid, process_start(pid)) for pid in descendants()}

    def start(self) -> None:
        """Keep orphans of the run findable (they re-parent here)."""
        if not self._was_subreaper:
            self.subreaper = set_subreaper(True)

    def members(self) -> list[int]:
        """Live processes started under this one since the run began (and not kept)."""
        return [
            pid for pid in descendants(self.root)
            if pid not in self.keep and (pid, process_start(pid)) not in self._before
        ]

    def stop(self, grace_s: float = 2.0, sig: int = signal.SIGTERM) -> list[int]:
        """`sig` (SIGTERM) to every member, SIGKILL to any alive after `grace_s`; returns the PIDs signalled.

        Members started meanwhile (a pool replacing a worker) are signalled too.
        """
        signalled: list[int] = []
        now = time.monotonic()
        kill_at, give_up_at = now + grace_s, now + grace_s + 5.0
        while True:
            _reap(signalled)
            members = self.members()
            now = time.monotonic()
            if not members:
                break
            if now >= give_up_at:
                log.warning("wiredprof: processes %s survived SIGKILL", members)
                break
            hard = now >= kill_at
            for pid in members:
                if (hard or pid not in signalled) and self._signal(pid, signal.SIGKILL if hard else sig):
                    if pid not in signalled:
                        signalled.append(pid)
            time.sleep(0.02)
        _reap(signalled)
        return signalled

    def close(self) -> None:
        """Stop being a subreaper (if this run made us one)."""
        if self.subreaper:
            set_subreaper(False)
            self.subreaper = False

    @staticmethod
    def _signal(pid: int, sig: int) -> bool:
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            log.warning("wiredprof: not allowed to signal process %d", pid)
            return False
