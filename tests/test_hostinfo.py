"""Memory this process may use."""
from __future__ import annotations

import os

from wiredprof.hostinfo import memory_limit_bytes


def test_memory_limit_is_at_most_the_machine():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory_limit_bytes() <= total
