"""Every sample flow, with how the benchmarks run it: the one list `benchmarks/decisions.py` reads.

Add a sample here when you add one under `samples/`: its file, the arguments that keep a
run short, how long `wiredprof analyze` runs it, and (optionally) which stage the
decisions benchmark offloads to host B to check the planner's prediction. A `*_flow.py`
file left out of this list is still run by the benchmark, with no arguments, and the
report says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["SampleFlow", "SAMPLES", "SAMPLES_DIR", "sample_flows"]

SAMPLES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SampleFlow:
    """One sample flow as the benchmarks run it."""

    name: str
    file: str  # relative to samples/
    args: tuple[str, ...] = ()  # after `--`: arguments of the flow itself
    runs: int = 3  # `wiredprof analyze --runs N`: every pipeline N cycles
    duration_s: float = 60.0  # `--duration`: the bound for pipelines that cycle slowly
    stage: str = ""  # the stage to offload ("": the plan's recommendation, else its best offloadable row)
    reference: bool = False  # the reference service (prediction target: 10 %)
    callback_dominated: bool = False  # its stage mostly calls back to A (target: 30 % or "not recommended")
    # CPU seconds of core logic to size once with `_workload.calibrate_blocks` and pass as
    # `--core-blocks N` to every run, so before and after do the same work (0: the flow sizes its own).
    core_cpu_s: float = 0.0
    catalogued: bool = True

    @property
    def path(self) -> Path:
        return SAMPLES_DIR / self.file


SAMPLES: list[SampleFlow] = [
    SampleFlow("reference", "reference_flow.py", ("--scale", "0.05", "--seconds", "600"), runs=5,
               stage="pipeline_3.core_logic", reference=True, core_cpu_s=60 * 0.05),
    SampleFlow("plain", "plain_flow.py", ("--scale", "0.05", "--seconds", "600"), runs=3, core_cpu_s=60 * 0.05),
    SampleFlow("waiting", "waiting_flow.py", ("--scale", "0.05", "--seconds", "600"), runs=2, core_cpu_s=5 * 0.05),
    SampleFlow("callback", "callback_flow.py", ("--records", "20000", "--seconds", "600"), runs=6,
               stage="report.core_logic", callback_dominated=True),
    # Idle: its cycles take milliseconds against a 5 s schedule; the run is bounded by time.
    SampleFlow("idle", "idle_flow.py", ("--period", "5", "--seconds", "600"), runs=1000, duration_s=20.0),
    # Launched from a multiprocessing.Pool worker beside a mock API, as wiredflow's demos are; runs until stopped.
    SampleFlow("pool_demo", "pool_demo_flow.py", ("--seconds", "600"), runs=3, duration_s=30.0),
    # Four launch_flow calls in a row, each `--seconds` long: bounded by its own time.
    SampleFlow("storages", "storages_flow.py", ("--seconds", "3"), runs=1000, duration_s=60.0),
    # Two pipelines, each with a CPU-bound stage of its own (benchmarks/dask_concurrency.py).
    SampleFlow("concurrent", "concurrent_flow.py", ("--heavy-s", "0.5", "--seconds", "600"), runs=3),
]


def sample_flows() -> list[SampleFlow]:
    """The catalogue, then any `samples/*_flow.py` it does not list (run with no arguments)."""
    known = {s.file for s in SAMPLES}
    extra = [SampleFlow(p.stem, p.name, catalogued=False)
             for p in sorted(SAMPLES_DIR.glob("*_flow.py")) if p.name not in known]
    return list(SAMPLES) + extra
