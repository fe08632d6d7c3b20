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

from wiredprof.adapters.plain import FlowStopped, pipeline, should_stop, stage

__all__ = ["__version__", "pipeline", "stage", "should_stop", "FlowStopped"]
