"""Start-up hook of every Python process spawned during a wiredprof run (see wiredprof/profiling/child.py).

It joins the run, then runs the `sitecustomize` this one hides on `sys.path`, if any.
"""
import importlib
import os
import sys


def _join_run() -> None:
    try:
        from wiredprof.profiling.child import attach_from_environment

        attach_from_environment()
    except Exception as exc:  # never stop the user's process from starting
        sys.stderr.write(f"wiredprof: this process is not profiled: {exc}\n")


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    mine = sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if mine is not None:
            sys.modules["sitecustomize"] = mine


_join_run()
_chain()
