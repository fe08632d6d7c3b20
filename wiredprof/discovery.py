"""Which stages a flow has, without running any of them.

The flow file runs in a child interpreter as `__main__`, with `launch_flow` replaced by:
build the pipelines (wiredflow's own `initialize_internal_structure`), name every stage,
print them, and return at once. The script then goes on to its next `launch_flow`, if it
has one (wiredflow's storage demo launches four flows in a row), and ends as it would, its
own `finally` and `atexit` clean-ups run. Flows are numbered in the order they are
launched, and a pipeline name an earlier flow used gets `#N`, as `analyze` names them.
Plain-Python flows declare their stages only while they run: for those, the last profile
is the source of truth.
"""
from __future__ import annotations

import collections
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from wiredprof.errors import FlowFileError
from wiredprof.proctree import alive, descendants
from wiredprof.profiling import child as child_join
from wiredprof.stages import StageName

__all__ = ["discover_stages"]

_MARK = "wiredprof-stages:"
_IMPORTS_WIREDFLOW = re.compile(r"^\s*(from|import)\s+wiredflow\b", re.MULTILINE)


def discover_stages(flow: str | os.PathLike[str], args: list[str] | None = None, timeout_s: float = 60.0) -> list[StageName]:
    """The stages of a wiredflow flow file (empty for a flow that does not use wiredflow).

    The child runs in a session of its own; once it has named the stages (or failed, or
    run out of time), it and every process it started are stopped, by process group and
    by PID: nothing is left behind.
    """
    path = Path(flow)
    if not path.is_file():
        raise FlowFileError(f"{flow}: no such flow file")
    if not _IMPORTS_WIREDFLOW.search(path.read_text(encoding="utf-8", errors="replace")):
        return []  # a plain-Python flow (one that only names wiredflow): its stages exist only while it runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop(child_join.ENV, None)
    env.pop(child_join.DISCOVERY_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiredprof.discovery", str(path), *(args or [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )
    found: list[str] = []
    err_tail: collections.deque[str] = collections.deque(maxlen=20)
    named = threading.Event()
    last_mark = [0.0]
    readers = [
        threading.Thread(target=_read_marks, args=(proc.stdout, found, named, last_mark), daemon=True),
        threading.Thread(target=_read_tail, args=(proc.stderr, err_tail), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not named.is_set() and proc.poll() is None and time.monotonic() < deadline:
            named.wait(0.1)
        # More flows may follow: wait for the script to end, as long as flows keep coming.
        while (named.is_set() and proc.poll() is None and len(found) < _MAX_FLOWS
               and time.monotonic() < min(deadline, last_mark[0] + _NEXT_FLOW_S)):
            time.sleep(0.05)
        timed_out = not named.is_set() and proc.poll() is None
    finally:
        _stop_process_tree(proc)
        for t in readers:
            t.join(timeout=2.0)
    if found:
        return _numbered([json.loads(line)["stages"] for line in found])
    if timed_out:
        raise FlowFileError(f"{flow}: did not reach launch_flow within {timeout_s:.0f} s "
                            "(its processes were stopped)")
    if proc.returncode not in (0, None):
        last = (list(err_tail) or ["(no output)"])[-1]
        raise FlowFileError(f"{flow} failed before launching its flow: {last}")
    return []


# After a flow was named, how long the script may take to launch its next one (or end).
_NEXT_FLOW_S = 15.0
_MAX_FLOWS = 64  # a script launching flows in an endless loop: enough of them
_DECODER = json.JSONDecoder()


def _numbered(flows: list[list[dict[str, Any]]]) -> list[StageName]:
    """Every flow's stages, flow by flow; a pipeline name an earlier flow used becomes `NAME#N`
    (RunControl.register_flow's rule, so the names match the profile's)."""
    out: list[StageName] = []
    used: set[str] = set()
    for number, stages in enumerate(flows, start=1):
        names = {str(d["pipeline"]) for d in stages}
        rename = {p: p if p not in used else f"{p}#{number}" for p in names}
        used |= set(rename.values())
        for d in stages:
            out.append(StageName(**{**d, "pipeline": rename[str(d["pipeline"])], "flow": number,
                                    "stateful": tuple(d.get("stateful", ()))}))
    return out


def _read_marks(stream: IO[bytes] | None, found: list[str], named: threading.Event, last: list[float]) -> None:
    assert stream is not None
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        # Other processes of the flow write to the same pipe: a mark may share its line with
        # their output, before or after it.
        for part in line.split(_MARK)[1:]:
            try:
                mark, _ = _DECODER.raw_decode(part)
            except ValueError:
                continue
            found.append(json.dumps(mark))
            last[0] = time.monotonic()
            named.set()


def _read_tail(stream: IO[bytes] | None, tail: collections.deque[str]) -> None:
    assert stream is not None
    for raw in stream:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            tail.append(line)


def _stop_process_tree(proc: subprocess.Popen[bytes]) -> None:
    """End the discovery child and everything it started: its process group, then any straggler by PID.

    SIGINT first, as a Ctrl-C would: the script's `with` blocks and `finally` clauses run (a
    temporary directory of its own is removed, a pool is terminated); SIGTERM and SIGKILL
    follow for what is still there a second later.
    """
    pids = descendants(proc.pid) if proc.poll() is None else []
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if _gone(proc, pids, within_s=1.0):
            break
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
        pass


def _gone(proc: subprocess.Popen[bytes], pids: list[int], within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if proc.poll() is not None and not any(alive(p) for p in pids) and not _groupalive(proc.pid):
            return True
        time.sleep(0.02)
    return False


def _groupalive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    # A group of zombies only still "exists": look for a live member.
    return any(alive(int(n)) and _pgid(int(n)) == pgid for n in os.listdir("/proc") if n.isdigit())


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _ship_error(fn: object) -> str:
    """Why `fn` cannot be shipped to another host, naming the object ("" when it can)."""
    from wiredprof.errors import PickleError
    from wiredprof.remote.serialize import LocalObjects, dump_function

    try:
        dump_function(fn, LocalObjects())  # type: ignore[arg-type]
    except PickleError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - anything else is as fatal for shipping
        return f"{type(exc).__name__}: {exc}"
    return ""


def _needs(fn: object) -> str:
    """What `fn` needs on another host, as JSON (`{"error": ...}` when it cannot be known)."""
    from wiredprof.remote.requirements import stage_needs

    try:
        return json.dumps(stage_needs(fn).to_json())  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - reported by the command that asks
        return json.dumps({"error": str(exc)})


def patch_launch_flow(main_pid: int) -> None:
    """Make `launch_flow` print the flow's stages instead of running it (in this process and, via
    `WIREDPROF_DISCOVERY`, in processes it spawns) and return: the script goes on to its next
    flow or its end, and the parent stops the whole tree once no more flows come.
    """
    from wiredprof.adapters import wiredflow as adapter
    from wiredprof.remote.statefulness import stateful_reasons

    def launch_flow(self, execution_seconds=None):  # type: ignore[no-untyped-def]
        self.initialize_internal_structure()
        refs = adapter.map_stages(self.processing_pool)
        objects = {(r.pipeline, r.index): st for name, p in self.processing_pool.items()
                   for r, st in zip([x for x in refs if x.pipeline == str(name)], p.action.init_stages)}
        names = []
        for r in refs:
            fn = getattr(objects.get((r.pipeline, r.index)), "function_to_launch", None)
            names.append({"pipeline": r.pipeline, "stage": r.stage, "function": r.function,
                          "builtin": fn is None, "ship_error": _ship_error(fn) if fn is not None else "",
                          "stateful": list(stateful_reasons(fn)) if fn is not None else [],
                          "needs": _needs(fn) if fn is not None else ""})
        print(_MARK + json.dumps({"pid": os.getpid(), "stages": names}), flush=True)
        return None  # the script goes on: to its next flow, or to its end

    def patch_on_import() -> None:
        from wiredflow.main.flow import FlowProcessor

        FlowProcessor.launch_flow = launch_flow

    adapter.install_import_hook(instrument_stages=False, after_import=[patch_on_import])


def _main(argv: list[str]) -> int:
    flow = Path(argv[0]).resolve()
    os.environ[child_join.DISCOVERY_ENV] = str(os.getpid())
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [child_join.BOOT_DIR, os.environ.get("PYTHONPATH")] if p)
    patch_launch_flow(os.getpid())
    sys.argv = [str(flow), *argv[1:]]
    sys.path[0] = str(flow.parent)
    runpy.run_path(str(flow), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
