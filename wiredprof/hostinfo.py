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
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            root, name = Path("/sys/fs/cgroup"), "memory.max"
        elif "memory" in controllers.split(","):
            root, name = Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"
        else:
            continue
        # A limit anywhere up the hierarchy applies: take the tightest.
        here = root / path.lstrip("/")
        for directory in (here, *here.parents):
            try:
                text = (directory / name).read_text().strip()
            except OSError:
                text = ""
            if text and text != "max" and int(text) < 1 << 60:
                limits.append(int(text))
            if directory == root:
                break
    return min(limits) if limits else None


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
