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

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "pipeline", "stage", "should_stop", "FlowStopped"]

if TYPE_CHECKING:
    from wiredprof.adapters.plain import FlowStopped, pipeline, should_stop, stage

_PLAIN_API = frozenset(("pipeline", "stage", "should_stop", "FlowStopped"))


def __getattr__(name: str) -> Any:
    # The plain API is imported on first use (PEP 562), so `import wiredprof.cli` stays light; the
    # name is then bound here, so a flow's hot loop (`wiredprof.pipeline(...)`) does not come back.
    if name in _PLAIN_API:
        from wiredprof.adapters import plain

        value = getattr(plain, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wiredprof' has no attribute {name!r}")
