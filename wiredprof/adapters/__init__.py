"""How a flow's stages are found and wrapped.

wiredflow  real wiredflow, patched at run time (the user's flow file is untouched)
plain      plain Python: decorators and context managers for pipelines and stages

At a stage's call both ask the run's `StageSwap`, if any, for a stand-in of the stage's own
callable: `runner.run_flow` sets the offload runtime it is given (`RunOptions.offloads`)
here, and a spawned process of the run sets its own (`profiling/child.py`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from wiredprof.adapters.wiredflow import StageRef

__all__ = ["StageSwap", "set_stage_swap", "stage_swap"]


class StageSwap(Protocol):
    """Who may run a stage's callable elsewhere: returns the callable to run instead, or None."""

    def wiredflow_stage(self, ref: StageRef, stage: Any, target: Callable[..., Any]) -> Callable[..., Any] | None:
        """For wiredflow stage object `stage` (`ref`: its names), whose method call is `target`."""

    def plain_stage(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
        """For the plain API's stage "PIPELINE.STAGE" decorating `fn`."""


_swap: StageSwap | None = None  # module-level: forked pipeline processes inherit it


def set_stage_swap(swap: StageSwap | None) -> StageSwap | None:
    """Make `swap` the run's (None: no stage is swapped); returns the one it replaces."""
    global _swap
    previous, _swap = _swap, swap
    return previous


def stage_swap() -> StageSwap | None:
    """The run's `StageSwap`, or None."""
    return _swap
