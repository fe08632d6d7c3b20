"""The processes a run started are found from /proc, orphans included, and ended by PID."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from wiredprof.proctree import ProcessTree, alive, descendants

# A child that starts a grandchild in a new session, then exits: the grandchild is an orphan
# outside any process group of ours; it ignores SIGTERM, so only SIGKILL ends it.
_ORPHAN_MAKER = """
import os, signal, subprocess, sys, time
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
p.stdout.readline()
print(p.pid, flush=True)
"""


def test_an_orphan_that_ignores_sigterm_is_found_and_killed():
    keep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # started before the run
    try:
        tree = ProcessTree()
        tree.start()
        out = subprocess.run([sys.executable, "-c", _ORPHAN_MAKER], capture_output=True, text=True, timeout=30)
        orphan = int(out.stdout.split()[-1])
        assert alive(orphan)
        assert orphan in descendants(), "a subreaper adopts the orphan"
        assert orphan in tree.members() and keep.pid not in tree.members()
        started = time.monotonic()
        signalled = tree.stop(grace_s=0.5)
        assert orphan in signalled
        assert not alive(orphan)
        assert time.monotonic() - started < 10
        assert keep.poll() is None, "a process from before the run was left alone"
        tree.close()
        assert not tree.subreaper
    finally:
        keep.kill()
        keep.wait()


def test_stop_with_nothing_started_returns_at_once():
    tree = ProcessTree()
    tree.start()
    assert tree.stop() == []
    tree.close()


def test_stop_can_kill_outright():
    tree = ProcessTree()
    tree.start()
    p = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "time.sleep(60)"])
    try:
        started = time.monotonic()
        assert tree.stop(grace_s=30, sig=signal.SIGKILL) == [p.pid]
        tree.close()
        assert not alive(p.pid)  # reaped by the tree (so Popen cannot tell its status)
        assert time.monotonic() - started < 10
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
