"""A decoy flow on real wiredflow: its bottleneck is a storage that only waits.

    pipeline_1: core logic 5 s (CPU) -> storage 30 s (waits: sleep, then a file append)
    pipeline_2: http connector 2 s (waits) -> storage 3 s (waits)

Durations are multiplied by `--scale` (default 0.1). The slowest pipeline is pipeline_1 and
almost all of its cycle is the storage, which uses no CPU: moving it to a host with a faster
CPU would not shorten it, so a planner must not recommend that. The core logic is the same
calibrated pure-Python work as the reference flow's (`samples/_workload.py`), only small.
No broker or server is needed: pipeline_2's connector is a custom callable that waits like
a poll of a slow device.

    python samples/waiting_flow.py [--scale 0.1] [--seconds N] [--processes]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

try:
    from samples._workload import calibrate_blocks, checksum_work, stable_seed
except ModuleNotFoundError:  # run as `python samples/waiting_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples._workload import calibrate_blocks, checksum_work, stable_seed

from samples._io_stages import JsonLinesStore, count_lines, read_records  # noqa: E402

SUMMARY_PREFIX = "waiting_flow summary: "

CORE_LOGIC_S = 5.0
CORE_STORAGE_S = 30.0
CONNECTOR_S = 2.0
CONNECTOR_STORAGE_S = 3.0


def core_logic(relevant_info: Any = None, db_connectors: dict[str, Any] | None = None,
               pipeline_name: str | None = None, blocks: int = 1, **kwargs: Any) -> dict[str, Any]:
    """A small CPU step: `blocks` blocks of checksum work seeded by `relevant_info`."""
    seed = stable_seed(relevant_info)
    return {"pipeline": pipeline_name, "blocks": blocks, "checksum": checksum_work(seed, blocks)}


class DevicePoll:
    """A custom connector that waits `wait_s` like polling a slow device, then returns a reading."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.polls = 0

    def __call__(self, **params: Any) -> dict[str, Any]:
        time.sleep(self.wait_s)
        self.polls += 1
        return {"device": "sensor-1", "poll": self.polls}


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="waiting_flow.py",
                                     description="A wiredflow flow whose bottleneck is a waiting storage.")
    parser.add_argument("--scale", type=_positive(float), default=0.1,
                        help="multiply every duration (default 0.1)")
    parser.add_argument("--seconds", type=_positive(float), default=None,
                        help="run the flow this long (default 200 x scale)")
    parser.add_argument("--processes", action="store_true", help="one process per pipeline")
    parser.add_argument("--core-blocks", type=_positive(int), default=None,
                        help="fix the core logic's work instead of calibrating it")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the storages' files here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from wiredflow.main.build import FlowBuilder

    args = parse_args(argv)
    seconds = args.seconds if args.seconds is not None else max(3.0, 200 * args.scale)
    use_threads = not args.processes
    core_blocks = args.core_blocks or calibrate_blocks(CORE_LOGIC_S * args.scale).blocks

    with ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="wiredprof-waiting-"))
            stack.callback(shutil.rmtree, workdir, True)
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        core_store = JsonLinesStore(workdir / "pipeline_1.storage.jsonl", CORE_STORAGE_S * args.scale)
        device_store = JsonLinesStore(workdir / "pipeline_2.storage.jsonl", CONNECTOR_STORAGE_S * args.scale)

        builder = FlowBuilder(use_threads=use_threads)
        builder.add_pipeline("pipeline_1", timedelta_seconds=1, delay_seconds=0) \
            .with_core_logic(core_logic, blocks=core_blocks) \
            .with_storage(core_store)
        builder.add_pipeline("pipeline_2", timedelta_seconds=1, delay_seconds=0) \
            .with_http_connector(DevicePoll(CONNECTOR_S * args.scale)) \
            .with_storage(device_store)
        flow = builder.build()
        try:
            flow.launch_flow(execution_seconds=seconds)
        except AttributeError as exc:
            # wiredflow 0.1.0 raises this after every successful process-mode run.
            if use_threads or "status" not in str(exc):
                raise

        checksums = sorted({r["data"]["checksum"] for r in read_records(core_store.path)})
        summary = {
            "mode": "threads" if use_threads else "processes",
            "scale": args.scale,
            "seconds": seconds,
            "core_blocks": core_blocks,
            "pipelines": {
                "pipeline_1": {"storage": count_lines(core_store.path), "checksums": checksums},
                "pipeline_2": {"storage": count_lines(device_store.path)},
            },
        }
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
