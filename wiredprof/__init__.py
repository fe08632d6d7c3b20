"""wiredprof: where the time goes in a pipeline service, and would a bigger machine fix it.

Public API for plain-Python services (wiredflow flows need none of it):

    import wiredprof

    with wiredprof.pipeline("ingest"):
        with wiredprof.stage("connector"):
            ...

    @wiredprof.stage("core_logic", pipeline="model")
    def core_logic(batch): ...
"""
from __future__ import annotations

__version__ = "0.1.0"

from typing import Any

__all__ = ["__version__", "pipeline", "stage"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import wiredprof.remote` (and the CLI's other commands) need not load the adapters.
    if name in ("pipeline", "stage"):
        from wiredprof.adapters import plain

        return getattr(plain, name)
    raise AttributeError(f"module 'wiredprof' has no attribute {name!r}")
