"""Storage and send stages for the samples that wait as I/O does, and leave a trace on disk.

Each call sleeps for its configured wait (the stand-in for a slow database or network
peer) and appends one JSON line to a file in the run's work directory. Files, not memory,
because in wiredflow's process mode every pipeline is a forked child: the parent reads the
files at the end to summarise what each stage did. Appends of one short line to an
`O_APPEND` file are atomic, so concurrent writers from threads or processes do not mix.

The objects hold only a path and a number, so they pickle (wiredflow hands storage stage
objects to core logic in `db_connectors`, and an offloaded core logic ships them).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["JsonLinesStore", "SlowSender", "count_lines", "read_records"]


def _append(path: str, record: dict[str, Any]) -> None:
    line = (json.dumps(record, sort_keys=True, default=repr) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def count_lines(path: str | Path) -> int:
    """How many records a store or sender has written (0 if none yet)."""
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """All records written to `path`, oldest first."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


class JsonLinesStore:
    """A storage stage: waits `wait_s` like a slow database write, then appends the record.

    Called by wiredflow as `store(relevant_info, **kwargs)` (kwargs: `pipeline_name`, ...).
    """

    def __init__(self, path: str | Path, wait_s: float) -> None:
        self.path = str(path)
        self.wait_s = wait_s

    def __call__(self, relevant_info: Any, **kwargs: Any) -> None:
        time.sleep(self.wait_s)
        _append(self.path, {"pipeline": kwargs.get("pipeline_name"), "data": relevant_info})

    def count(self) -> int:
        """Records stored so far (by any thread or process of this run)."""
        return count_lines(self.path)

    def __repr__(self) -> str:
        return f"JsonLinesStore({self.path!r}, wait_s={self.wait_s})"


class SlowSender:
    """A send stage: waits `wait_s` like a slow network peer, then logs what it sent.

    Called by wiredflow as `send(data, label_to_send=..., **kwargs)`.
    """

    def __init__(self, path: str | Path, wait_s: float) -> None:
        self.path = str(path)
        self.wait_s = wait_s

    def __call__(self, data: Any, label_to_send: str | None = None, **kwargs: Any) -> None:
        time.sleep(self.wait_s)
        payload = data.get(label_to_send) if label_to_send and isinstance(data, dict) else data
        _append(self.path, {"label": label_to_send, "data": payload})

    def count(self) -> int:
        """Messages sent so far."""
        return count_lines(self.path)

    def __repr__(self) -> str:
        return f"SlowSender({self.path!r}, wait_s={self.wait_s})"
