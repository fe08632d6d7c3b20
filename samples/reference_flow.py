"""The reference service of wiredprof's DESIGN.md, on real wiredflow 0.1.0, scaled in time.

    pipeline_1: http connector 5 s -> storage 15 s
    pipeline_2: mqtt connector 1 s -> storage 5 s
    pipeline_3: core logic 60 s -> send 1 s, storage 1 s, send 1 s

Every duration is multiplied by `--scale` (default 0.1: core logic about 6 s). The parts:

- core logic: real pure-Python CPU work (`samples/_workload.py`), sized at start-up so it
  takes 60 s x scale of CPU on an idle core of this machine; deterministic, seeded by its
  input, and it reads how many records pipeline_1 has stored (through `db_connectors`).
- http connector: wiredflow's built-in "get" connector against an HTTP server this sample
  starts on a free 127.0.0.1 port; each request waits 5 s x scale, like a slow remote API.
- mqtt connector: wiredflow's connector subscribed to a real broker, Debian's mosquitto,
  started here on a free 127.0.0.1 port and stopped on exit. A publisher thread sends a
  Python-literal reading every (1 + 5) s x scale. wiredflow has no "connector call" for MQTT
  (messages arrive on paho's thread and go straight to storage), so the connector's 1 s is
  modelled as the wait for the next message: after each 5 s x scale save the subscriber
  idles about 1 s x scale until the next reading arrives.
- storages and sends: wait like I/O (sleep) and append one JSON line to a file in a work
  directory (a temporary one unless `--workdir`), never inside site-packages.

Each pipeline restarts as soon as wiredflow's scheduler allows (timedelta_seconds=1, its
minimum; it polls every 0.5 s) and starts at once (delay_seconds=0). At the end the
sample prints one line, `reference_flow summary: {json}`, counting what every stage did.

    python samples/reference_flow.py [--scale 0.1] [--seconds N] [--processes] [--core-blocks N]
                                     [--core-memory-mb N]

`--core-memory-mb N` makes the core logic also build and hold an N MiB working set in
every call (for the memory variant of benchmarks/reference.py); it ships along with the
function when the stage is offloaded.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

try:
    from samples._workload import Calibration, calibrate_blocks, checksum_work, stable_seed
except ModuleNotFoundError:  # run as `python samples/reference_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples._workload import Calibration, calibrate_blocks, checksum_work, stable_seed

from samples._io_stages import JsonLinesStore, SlowSender, count_lines, read_records  # noqa: E402
from samples._loopback import (  # noqa: E402
    LOOPBACK,
    MosquittoBroker,
    MosquittoMissing,
    MqttPublisher,
    SlowHttpApi,
    find_mosquitto,
)

SUMMARY_PREFIX = "reference_flow summary: "
MQTT_TOPIC = "wiredprof/reference/readings"

# Seconds on "host A" in DESIGN.md's table; multiplied by --scale.
HTTP_CONNECTOR_S = 5.0
HTTP_STORAGE_S = 15.0
MQTT_CONNECTOR_S = 1.0
MQTT_STORAGE_S = 5.0
CORE_LOGIC_S = 60.0
SEND_S = 1.0
CORE_STORAGE_S = 1.0


def core_logic(
    relevant_info: Any = None,
    db_connectors: dict[str, Any] | None = None,
    pipeline_name: str | None = None,
    blocks: int = 1,
    memory_mb: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """pipeline_3's core logic: `blocks` blocks of CPU work seeded by `relevant_info`.

    With `memory_mb` > 0 it first builds a working set of that many MiB (every page
    written, so it is resident) and holds it while it computes, like a stage that loads a
    large model or table; the working set is folded into the result, so it is really used.

    Called by wiredflow as `fn(relevant_info=..., db_connectors=..., pipeline_name=...,
    blocks=...)`. The checksum depends only on (relevant_info, blocks), so it is the same
    wherever the function runs; `upstream_records` (pipeline_1's stored count) is not.
    """
    upstream_records = None
    store = (db_connectors or {}).get("pipeline_1")
    count = getattr(getattr(store, "function_to_launch", store), "count", None)
    if callable(count):
        upstream_records = count()
    seed = stable_seed(relevant_info)
    working_set = build_working_set(seed, memory_mb)
    checksum = checksum_work(seed, blocks)
    if working_set:
        checksum ^= sum(chunk[-1] for chunk in working_set)
    result = {
        "pipeline": pipeline_name,
        "seed": seed,
        "blocks": blocks,
        "checksum": checksum,
        "upstream_records": upstream_records,
    }
    if memory_mb:
        result["memory_mb"] = memory_mb
    del working_set
    return result


def build_working_set(seed: int, memory_mb: int) -> list[bytearray]:
    """`memory_mb` MiB in 1 MiB chunks, every byte written (resident, not just reserved)."""
    chunk = 1 << 20
    return [bytearray(((seed + i) & 0xFF).to_bytes(1, "little")) * chunk for i in range(max(0, memory_mb))]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reference_flow.py", description="The reference service of DESIGN.md on real wiredflow."
    )
    parser.add_argument("--scale", type=_positive_float, default=0.1,
                        help="multiply every stage duration of the table by this (default 0.1)")
    parser.add_argument("--seconds", type=_positive_float, default=None,
                        help="run the flow this long (wiredflow's execution_seconds; default 600 x scale)")
    parser.add_argument("--processes", action="store_true",
                        help="one process per pipeline (FlowBuilder(use_threads=False))")
    parser.add_argument("--core-blocks", type=_positive_int, default=None,
                        help="fix the core logic's work instead of calibrating it (same work on every host)")
    parser.add_argument("--core-memory-mb", type=int, default=0, metavar="N",
                        help="the core logic also builds and holds an N MiB working set per call (default 0)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the stages' files here (default: a temporary directory, removed)")
    parser.add_argument("--summary-json", type=Path, default=None,
                        help="also write the summary object to this file")
    return parser.parse_args(argv)


class StageFiles:
    """Where each storage and send stage of this run writes its records."""

    def __init__(self, workdir: Path) -> None:
        self.http_storage = workdir / "pipeline_1.storage.jsonl"
        self.mqtt_storage = workdir / "pipeline_2.storage.jsonl"
        self.send = workdir / "pipeline_3.send.jsonl"
        self.core_storage = workdir / "pipeline_3.storage.jsonl"
        self.send_2 = workdir / "pipeline_3.send_2.jsonl"


def build_flow(*, scale: float, use_threads: bool, http_url: str, mqtt_port: int,
               core_blocks: int, files: StageFiles, core_memory_mb: int = 0) -> Any:
    """The three pipelines of the reference service, built with wiredflow's FlowBuilder."""
    from wiredflow.main.build import FlowBuilder

    builder = FlowBuilder(use_threads=use_threads)
    builder.add_pipeline("pipeline_1", timedelta_seconds=1, delay_seconds=0) \
        .with_http_connector("get", source=http_url, timeout=max(30.0, 10 * HTTP_CONNECTOR_S * scale)) \
        .with_storage(JsonLinesStore(files.http_storage, HTTP_STORAGE_S * scale))
    builder.add_pipeline("pipeline_2", timedelta_seconds=1, delay_seconds=0) \
        .with_mqtt_connector(source=LOOPBACK, port=mqtt_port, topic=MQTT_TOPIC) \
        .with_storage(JsonLinesStore(files.mqtt_storage, MQTT_STORAGE_S * scale))
    builder.add_pipeline("pipeline_3", timedelta_seconds=1, delay_seconds=0) \
        .with_core_logic(core_logic, blocks=core_blocks,
                         **({"memory_mb": core_memory_mb} if core_memory_mb else {})) \
        .send(SlowSender(files.send, SEND_S * scale), label_to_send="checksum") \
        .with_storage(JsonLinesStore(files.core_storage, CORE_STORAGE_S * scale)) \
        .send(SlowSender(files.send_2, SEND_S * scale))
    return builder.build()


def launch(flow: Any, seconds: float, use_threads: bool) -> None:
    """Run the flow for `seconds`; absorb wiredflow 0.1.0's process-mode AttributeError."""
    try:
        flow.launch_flow(execution_seconds=seconds)
    except AttributeError as exc:
        # wiredflow 0.1.0 (flow.py:104) reads `.status` off a manager proxy after every
        # successful process-mode run; failures raise ValueError before that line.
        if use_threads or "status" not in str(exc):
            raise


def summarize(files: StageFiles, http_requests: int, mqtt_published: int, calibration: Calibration | None,
              core_blocks: int, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """What every stage did, read back from the stages' files (works for both modes)."""
    core_outputs = [r["data"] for r in read_records(files.core_storage)]
    return {
        "mode": "processes" if args.processes else "threads",
        "scale": args.scale,
        "seconds": seconds,
        "core_blocks": core_blocks,
        "core_cpu_s_calibrated": round(calibration.predicted_seconds, 3) if calibration else None,
        "pipelines": {
            "pipeline_1": {"http_requests": http_requests, "storage": count_lines(files.http_storage)},
            "pipeline_2": {"mqtt_published": mqtt_published, "storage": count_lines(files.mqtt_storage)},
            "pipeline_3": {
                "send": count_lines(files.send),
                "storage": len(core_outputs),
                "send_2": count_lines(files.send_2),
                "core_outputs": [
                    {k: out.get(k) for k in ("seed", "blocks", "checksum", "upstream_records")}
                    for out in core_outputs
                ],
            },
        },
    }


class _Terminated(SystemExit):
    """SIGTERM arrived: unwind so the broker and the HTTP server are stopped."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mosquitto = find_mosquitto()
    except MosquittoMissing as exc:
        print(f"reference_flow: {exc}", file=sys.stderr)
        return 2
    seconds = args.seconds if args.seconds is not None else max(5.0, 600 * args.scale)
    use_threads = not args.processes

    calibration = None
    if args.core_blocks is None:
        calibration = calibrate_blocks(CORE_LOGIC_S * args.scale)
        core_blocks = calibration.blocks
        print(f"reference_flow: core logic calibrated to {core_blocks} blocks "
              f"= {calibration.predicted_seconds:.2f} s CPU on this machine", file=sys.stderr)
    else:
        core_blocks = args.core_blocks

    restore_sigterm = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        restore_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)

    try:
        with ExitStack() as stack:
            if args.workdir is None:
                workdir = Path(tempfile.mkdtemp(prefix="wiredprof-reference-"))
                stack.callback(shutil.rmtree, workdir, True)
            else:
                workdir = args.workdir
                workdir.mkdir(parents=True, exist_ok=True)
            files = StageFiles(workdir)
            broker = stack.enter_context(MosquittoBroker(mosquitto))
            print(f"reference_flow: mosquitto pid {broker.pid} on {LOOPBACK}:{broker.port}", file=sys.stderr)
            api = SlowHttpApi(HTTP_CONNECTOR_S * args.scale)
            stack.callback(api.close)
            interval = (MQTT_CONNECTOR_S + MQTT_STORAGE_S) * args.scale
            publisher = MqttPublisher(broker.port, MQTT_TOPIC, interval)
            stack.callback(publisher.close)

            flow = build_flow(scale=args.scale, use_threads=use_threads, http_url=api.url,
                              mqtt_port=broker.port, core_blocks=core_blocks, files=files,
                              core_memory_mb=args.core_memory_mb)
            launch(flow, seconds, use_threads)

            summary = summarize(files, api.requests_served, publisher.published, calibration,
                                core_blocks, args, seconds)
    except _Terminated as stop:
        # The broker and the HTTP server are stopped by now (the ExitStack unwound), but
        # wiredflow's pipeline threads are not daemons and would keep the process alive
        # until --seconds pass (the MQTT one spinning): leave at once. (Ctrl-C is left to
        # Python, or to a profiler running this file, after the same clean-up.)
        print("reference_flow: stopped by SIGTERM", file=sys.stderr)
        for child in multiprocessing.active_children():  # process mode: the pipelines
            child.terminate()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(stop.code or 143))
    finally:
        if restore_sigterm is not None:
            signal.signal(signal.SIGTERM, restore_sigterm)

    line = json.dumps(summary, sort_keys=True)
    print(SUMMARY_PREFIX + line, flush=True)
    if args.summary_json is not None:
        args.summary_json.write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
