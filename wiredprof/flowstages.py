"""The stages of a flow as the commands see them, and which of them `offload` accepts.

From the flow file (`discovery`, without running the flow) or, for a plain-Python flow
whose stages exist only while it runs, from its last profile. `stages` holds the names
and their resolution; this module checks a plan and the planner's input against them.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from wiredprof.discovery import discover_stages
from wiredprof.errors import UsageError, WiredprofError
from wiredprof.profile import Profile
from wiredprof.stages import StageName, offload_refusal, resolve_stage

__all__ = ["known_stages", "stage_refusals", "check_offloads_exist", "WIREDFLOW_BUILTINS"]

log = logging.getLogger(__name__)

# wiredflow 0.1.0's built-in stage classes: the "function" a profile records for them.
WIREDFLOW_BUILTINS = frozenset({
    "StageGetHTTPConnector", "StagePostHTTPConnector", "DefaultMQTTConnector", "JSONStorageStage",
    "CSVStorageStage", "MongoStorageStage", "MQTTSendStage", "HTTPPUTSendStage", "HTTPPOSTSendStage",
})


def known_stages(flow: str | None, profile: Profile | None) -> tuple[list[StageName], str]:
    """The flow's stages (from the flow file, else from the last profile) and where they came from."""
    if flow is None and profile is not None and Path(profile.flow).is_file():
        flow = profile.flow
    plain = (profile is not None and profile.mode == "plain" and flow is not None
             and Path(profile.flow).resolve() == Path(flow).resolve())
    if flow is not None and not plain:  # a plain flow's stages exist only while it runs: its profile has them
        same = profile is not None and profile.argv and Path(profile.flow).resolve() == Path(flow).resolve()
        found = discover_stages(flow, profile.argv[1:] if same and profile is not None else None)
        if found:
            return found, flow
    if profile is not None:
        wiredflow = profile.mode in ("threads", "processes")
        return [StageName(s.pipeline, s.stage, s.function, builtin=wiredflow and s.function in WIREDFLOW_BUILTINS)
                for s in profile.stages], f"the last profile of {profile.flow}"
    if flow is None:
        raise UsageError("which flow? give FLOW.py, or run `wiredprof analyze FLOW.py` first")
    raise UsageError(f"no stage found in {flow} without running it: run `wiredprof analyze {flow}` first")


def stage_refusals(profile: Profile) -> dict[str, str]:
    """"PIPELINE.STAGE" -> why `wiredprof offload` would refuse it, for every stage it refuses."""
    try:
        stages, _ = known_stages(None, profile)
    except WiredprofError as exc:
        log.info("could not list the flow's stages (%s); using the profile's", exc)
        stages, _ = known_stages(None, replace(profile, flow=""))
    refused = {s.full: offload_refusal(s) for s in stages}
    return {name: why for name, why in refused.items() if why}


def check_offloads_exist(offloaded: Iterable[str], stages: list[StageName], flow: str) -> None:
    """Every offloaded stage (its "PIPELINE.STAGE") must still be in the flow: a plan naming a vanished stage is refused."""
    if not stages:
        return  # a plain-Python flow: its stages are known only while it runs
    for name in offloaded:
        try:
            resolve_stage(name, stages, where=flow)
        except UsageError as exc:
            raise UsageError(
                f"the offload plan names {name!r}, which {flow} no longer has ({exc}); "
                f"`wiredprof offload --remove {name}` or fix the flow"
            ) from None
