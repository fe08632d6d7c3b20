"""Facts about this host that the planner weighs: memory the flow may use."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["memory_limit_bytes"]


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v1 or v2), or None when unlimited or unknown."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            candidates = [Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max"]
        elif "memory" in controllers.split(","):
            candidates = [Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.limit_in_bytes"]
        else:
            continue
        for c in candidates:
            try:
                text = c.read_text().strip()
            except OSError:
                continue
            if text and text != "max" and int(text) < 1 << 60:
                return int(text)
    return None


def memory_limit_bytes() -> int:
    """Memory this process may use: the machine's, or its cgroup's limit when lower (0: unknown)."""
    total = 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    limit = _cgroup_limit()
    if limit is not None and (total == 0 or limit < total):
        return limit
    return total
