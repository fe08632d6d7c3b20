"""Which stages a flow has, without running any of them.

The flow file runs in a child interpreter as `__main__` up to `launch_flow`, which is
replaced by: build the pipelines (wiredflow's own `initialize_internal_structure`), name
every stage, print them, and leave through `SystemExit` so the flow's own `finally` and
`atexit` clean-ups still run. Plain-Python flows declare their stages only while they
run: for those, the last profile is the source of truth.
"""
from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

from wiredprof.errors import FlowFileError
from wiredprof.stages import StageName

__all__ = ["discover_stages"]

_MARK = "wiredprof-stages:"
_IMPORTS_WIREDFLOW = re.compile(r"^\s*(from|import)\s+wiredflow\b", re.MULTILINE)


class _Discovered(SystemExit):
    pass


def discover_stages(flow: str | os.PathLike[str], args: list[str] | None = None, timeout_s: float = 60.0) -> list[StageName]:
    """The stages of a wiredflow flow file (empty for a flow that does not use wiredflow)."""
    path = Path(flow)
    if not path.is_file():
        raise FlowFileError(f"{flow}: no such flow file")
    if not _IMPORTS_WIREDFLOW.search(path.read_text(encoding="utf-8", errors="replace")):
        return []  # a plain-Python flow (one that only names wiredflow): its stages exist only while it runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wiredprof.discovery", str(path), *(args or [])],
            capture_output=True, text=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise FlowFileError(f"{flow}: did not reach launch_flow within {timeout_s:.0f} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return [StageName(**{**d, "stateful": tuple(d.get("stateful", ()))}) for d in json.loads(line[len(_MARK):])]
    if proc.returncode not in (0, None):
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise FlowFileError(f"{flow} failed before launching its flow: {last}")
    return []


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


def _main(argv: list[str]) -> int:
    from wiredprof.adapters import wiredflow as adapter
    from wiredprof.remote.statefulness import stateful_reasons

    flow = Path(argv[0]).resolve()

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
        print(_MARK + json.dumps(names), flush=True)
        raise _Discovered(0)

    def patch_on_import() -> None:
        from wiredflow.main.flow import FlowProcessor

        FlowProcessor.launch_flow = launch_flow

    adapter.after_import_hooks.append(patch_on_import)
    adapter.install_import_hook(instrument_stages=False)
    sys.argv = [str(flow), *argv[1:]]
    sys.path[0] = str(flow.parent)
    try:
        runpy.run_path(str(flow), run_name="__main__")
    except _Discovered:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
