"""Two pipelines, each calling a CPU-bound stage of its own: calls that may run side by side.

    pipeline_a: heavy (CPU work, --heavy-s seconds) -> a short pause (--pause-s)
    pipeline_b: heavy (the same)                    -> a short pause

Plain Python marked for wiredprof (`wiredprof.pipeline`, `wiredprof.stage`): each pipeline is a
thread looping cycles until `--seconds` pass or a profiler run asks it to stop. The heavy
stage is one decorated function, so each pipeline's call of it (`pipeline_a.heavy`,
`pipeline_b.heavy`) can be offloaded on its own; offloaded to one Dask cluster, the calls of
both pipelines are in flight at once. The planner's concurrency model is checked with it
(`benchmarks/dask_concurrency.py`).

At the end it prints one line, `concurrent_flow summary: {json}`.

    python samples/concurrent_flow.py [--heavy-s 1.0] [--pause-s 0.1] [--seconds N] [--blocks N]
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

try:
    from samples._workload import calibrate_blocks, checksum_work
except ModuleNotFoundError:  # run as `python samples/concurrent_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples._workload import calibrate_blocks, checksum_work

import wiredprof  # noqa: E402

SUMMARY_PREFIX = "concurrent_flow summary: "
PIPELINES = ("pipeline_a", "pipeline_b")


@wiredprof.stage("heavy", kind="core_logic")
def heavy(seed: int, blocks: int) -> int:
    """`blocks` blocks of pure-Python CPU work from `seed` (the same result wherever it runs)."""
    return checksum_work(seed, blocks)


def run(seconds: float, blocks: int, pause_s: float) -> dict[str, object]:
    """Both pipelines in threads until `seconds` pass or wiredprof stops them; what they did."""
    deadline = time.monotonic() + seconds
    calls: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def loop(name: str) -> None:
        n = 0
        while time.monotonic() < deadline and not wiredprof.should_stop(name):
            try:
                with wiredprof.pipeline(name):
                    heavy(n, blocks)
                    time.sleep(pause_s)
            except Exception as exc:  # noqa: BLE001 - reported in the summary, and the run fails
                with lock:
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                return
            n += 1
            with lock:
                calls[name] += 1

    threads = [threading.Thread(target=loop, args=(name,), name=name) for name in PIPELINES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    return {"calls": dict(calls), "errors": errors, "blocks": blocks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heavy-s", type=float, default=1.0, help="CPU seconds of one heavy call on this machine")
    ap.add_argument("--blocks", type=int, default=0, help="work blocks per call (default: sized to --heavy-s)")
    ap.add_argument("--pause-s", type=float, default=0.1, help="pause after each heavy call")
    ap.add_argument("--seconds", type=float, default=60.0, help="stop after this long (wiredprof may stop it sooner)")
    args = ap.parse_args(argv)
    if args.heavy_s <= 0 or args.pause_s < 0 or args.seconds <= 0 or args.blocks < 0:
        ap.error("--heavy-s and --seconds must be > 0, --pause-s and --blocks >= 0")
    blocks = args.blocks or calibrate_blocks(args.heavy_s).blocks
    summary = run(args.seconds, blocks, args.pause_s)
    print(SUMMARY_PREFIX + json.dumps(summary), flush=True)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
