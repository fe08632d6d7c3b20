"""A flow whose core logic reads two storages through `db_connectors` on every call.

    weather: http connector (a custom poll: a batch of station readings) -> json storage
    prices:  http connector (a custom poll: a batch of tariffs)         -> json storage
    report:  core logic (joins both storages' contents) -> send (appends one line)

Written the way wiredflow's own examples write a core logic: it does not receive its data
from a previous stage but loads it, whole, with `db_connectors["weather"].load()` and
`db_connectors["prices"].load()`, each call. Those storages are wiredflow's JSON storage
objects: they stay on this host when the core logic runs elsewhere, so on an offload host
each `load()` is a call back to this host, which reads the file here and sends its
content over. The join itself is small: most of the core logic's time is that reading.

`--records N` sets the size of each batch (default 20000, about 1 MB of JSON per
storage); `--work N` adds N blocks of pure-Python CPU work to the join (default 0).

    python samples/callback_flow.py [--records 20000] [--work 0] [--seconds N] [--processes]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

try:
    from samples._workload import checksum_work, stable_seed
except ModuleNotFoundError:  # run as `python samples/callback_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples._workload import checksum_work, stable_seed

from samples._io_stages import count_lines  # noqa: E402

SUMMARY_PREFIX = "callback_flow summary: "


def reading(i: int, poll: int) -> dict[str, Any]:
    """Station `i`'s reading in poll number `poll`."""
    return {"station": f"st-{i:05d}", "poll": poll, "temp_c": round(10 + (i * 7 + poll) % 250 / 10, 1),
            "humidity": (i * 13 + poll) % 100}


def tariff(i: int, poll: int) -> dict[str, Any]:
    """Station `i`'s price of energy in poll number `poll`."""
    return {"station": f"st-{i:05d}", "poll": poll, "price": round(0.1 + (i * 3 + poll) % 90 / 100, 2)}


class BatchPoll:
    """A custom connector: one batch of `records` records per poll, built by `record(i, poll)`."""

    def __init__(self, records: int, record: Callable[[int, int], dict[str, Any]]) -> None:
        self.records = records
        self.record = record
        self.polls = 0

    def __call__(self, **params: Any) -> list[dict[str, Any]]:
        self.polls += 1
        return [self.record(i, self.polls) for i in range(self.records)]


def report(relevant_info: Any = None, db_connectors: dict[str, Any] | None = None,
           pipeline_name: str | None = None, work: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Join the latest weather and prices, as stored, into one cost-of-cooling figure."""
    connectors = db_connectors or {}
    weather = connectors["weather"].load() or []
    prices = connectors["prices"].load() or []
    price_of = {p["station"]: p["price"] for p in prices}
    cooling = 0.0
    hot = 0
    for r in weather:
        excess = r["temp_c"] - 22.0
        if excess > 0:
            hot += 1
            cooling += excess * price_of.get(r["station"], 0.0)
    checksum = checksum_work(stable_seed(hot), work) if work else 0
    return {"pipeline": pipeline_name, "stations": len(weather), "priced": len(price_of), "hot": hot,
            "cooling_cost": round(cooling, 2), "checksum": checksum}


class LineSender:
    """A custom send: appends what it gets as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, data: Any, **params: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(data, sort_keys=True) + "\n")


def _positive(kind: Callable[[str], Any], zero: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if zero else '> 0'}: {text!r}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callback_flow.py",
                                     description="A wiredflow flow whose core logic loads two storages per call.")
    parser.add_argument("--records", type=_positive(int), default=20000, help="readings per batch (default 20000)")
    parser.add_argument("--work", type=_positive(int, zero=True), default=0,
                        help="extra blocks of CPU work in the join (default 0)")
    parser.add_argument("--seconds", type=_positive(float), default=30.0, help="run the flow this long (default 30)")
    parser.add_argument("--processes", action="store_true", help="one process per pipeline")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the storages' files here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from wiredflow.main.build import FlowBuilder

    args = parse_args(argv)
    use_threads = not args.processes
    with ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="wiredprof-callback-"))
            stack.callback(shutil.rmtree, workdir, True)
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        sent = workdir / "report.send.jsonl"

        builder = FlowBuilder(use_threads=use_threads)
        builder.add_pipeline("weather", timedelta_seconds=1, delay_seconds=0) \
            .with_http_connector(BatchPoll(args.records, reading)) \
            .with_storage("json", folder_to_save=workdir, mapping="overwrite")
        builder.add_pipeline("prices", timedelta_seconds=1, delay_seconds=0) \
            .with_http_connector(BatchPoll(args.records, tariff)) \
            .with_storage("json", folder_to_save=workdir, mapping="overwrite")
        builder.add_pipeline("report", timedelta_seconds=1, delay_seconds=1) \
            .with_core_logic(report, work=args.work) \
            .send(LineSender(sent), label_to_send="cooling_cost")
        flow = builder.build()
        try:
            flow.launch_flow(execution_seconds=args.seconds)
        except AttributeError as exc:
            # wiredflow 0.1.0 raises this after every successful process-mode run.
            if use_threads or "status" not in str(exc):
                raise
        summary = {"mode": "threads" if use_threads else "processes", "records": args.records,
                   "work": args.work, "seconds": args.seconds, "reports": count_lines(sent)}
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
