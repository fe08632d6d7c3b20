"""The reference service of DESIGN.md in plain Python (no wiredflow), marked for wiredprof.

Same shape and durations (x `--scale`, default 0.1) as `reference_flow.py`:

    pipeline_1: http_connector 5 s -> storage 15 s
    pipeline_2: mqtt_connector 1 s -> storage 5 s
    pipeline_3: core_logic 60 s -> send 1 s, storage 1 s, send_2 1 s

Each pipeline is a thread looping cycles until `--seconds` pass or a profiler run asks it
to stop (`wiredprof.should_stop()`). A cycle is marked with `wiredprof.pipeline(name)`, each
stage call with `wiredprof.stage(name, kind=...)`; the core logic is a decorated function,
so a profiler can swap it for a remote proxy. The parts are real and on loopback:

- http_connector: `urllib` GET against an HTTP server started here on a free 127.0.0.1
  port; each request waits 5 s x scale like a slow remote API.
- mqtt_connector: a paho subscriber on Debian's mosquitto, started here on a free
  127.0.0.1 port and stopped on exit; a publisher thread sends a reading every
  (1 + 5) s x scale, so after each 5 s x scale save the connector waits about 1 s x scale
  for the next message. Payloads are parsed with `ast.literal_eval` (wiredflow `eval`s them).
- core_logic: calibrated pure-Python CPU work (`samples/_workload.py`), 60 s x scale of CPU
  on an idle core of this machine, deterministic in its input.
- storage, send: wait like I/O and append a JSON line to a file in a work directory.

At the end it prints one line, `plain_flow summary: {json}`.

    python samples/plain_flow.py [--scale 0.1] [--seconds N] [--core-blocks N]
"""
from __future__ import annotations

import argparse
import ast
import json
import queue
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

try:
    from samples._workload import calibrate_blocks, checksum_work, stable_seed
except ModuleNotFoundError:  # run as `python samples/plain_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples._workload import calibrate_blocks, checksum_work, stable_seed

import wiredprof  # noqa: E402
from samples._io_stages import JsonLinesStore, SlowSender, read_records  # noqa: E402
from samples._loopback import (  # noqa: E402
    LOOPBACK,
    MosquittoBroker,
    MosquittoMissing,
    MqttPublisher,
    SlowHttpApi,
    find_mosquitto,
)

SUMMARY_PREFIX = "plain_flow summary: "
MQTT_TOPIC = "wiredprof/plain/readings"

HTTP_CONNECTOR_S = 5.0
HTTP_STORAGE_S = 15.0
MQTT_CONNECTOR_S = 1.0
MQTT_STORAGE_S = 5.0
CORE_LOGIC_S = 60.0
SEND_S = 1.0
CORE_STORAGE_S = 1.0


@wiredprof.stage("core_logic", kind="core_logic")
def core_logic(relevant_info: Any, upstream: JsonLinesStore | None, blocks: int) -> dict[str, Any]:
    """pipeline_3's core logic: `blocks` blocks of CPU work seeded by `relevant_info`.

    Reads how many records pipeline_1 has stored (`upstream`, may be None). The checksum
    depends only on (relevant_info, blocks), so it is the same wherever this runs.
    """
    seed = stable_seed(relevant_info)
    return {
        "seed": seed,
        "blocks": blocks,
        "checksum": checksum_work(seed, blocks),
        "upstream_records": upstream.count() if upstream is not None else None,
    }


class MqttInbox:
    """A paho subscriber on the broker; messages wait in a queue for the connector stage."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: queue.Queue[bytes] = queue.Queue()
        self._client = mqtt.Client(client_id="", protocol=mqtt.MQTTv311)
        self._client.on_connect = lambda client, userdata, flags, rc: client.subscribe(topic)
        self._client.on_message = lambda client, userdata, msg: self.messages.put(msg.payload)
        self._client.connect(LOOPBACK, port, keepalive=30)
        self._client.loop_start()

    def receive(self, stopping: Callable[[], bool], timeout_s: float) -> Any | None:
        """The next message's Python-literal payload; None if `stopping()` turns true first."""
        deadline = time.monotonic() + timeout_s
        while not stopping():
            try:
                payload = self.messages.get(timeout=min(0.1, max(0.001, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no MQTT message on {MQTT_TOPIC} for {timeout_s:.1f} s") from None
                continue
            return ast.literal_eval(payload.decode("utf-8"))
        return None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class PlainFlow:
    """Three pipelines in threads, each looping its cycle; the first failure stops them all."""

    def __init__(self, *, scale: float, http_url: str, inbox: MqttInbox, core_blocks: int,
                 workdir: Path, message_timeout_s: float) -> None:
        self.scale = scale
        self.http_url = http_url
        self.inbox = inbox
        self.core_blocks = core_blocks
        self.message_timeout_s = message_timeout_s
        self.http_store = JsonLinesStore(workdir / "pipeline_1.storage.jsonl", HTTP_STORAGE_S * scale)
        self.mqtt_store = JsonLinesStore(workdir / "pipeline_2.storage.jsonl", MQTT_STORAGE_S * scale)
        self.sender = SlowSender(workdir / "pipeline_3.send.jsonl", SEND_S * scale)
        self.core_store = JsonLinesStore(workdir / "pipeline_3.storage.jsonl", CORE_STORAGE_S * scale)
        self.sender_2 = SlowSender(workdir / "pipeline_3.send_2.jsonl", SEND_S * scale)
        self.stop = threading.Event()
        self.deadline = float("inf")
        self.calls: Counter[str] = Counter()
        self.errors: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()

    def _count(self, stage: str) -> None:
        with self._lock:
            self.calls[stage] += 1

    def pipeline_1(self) -> None:
        """http_connector -> storage."""
        with wiredprof.stage("http_connector", kind="http_connector"):
            timeout = max(30.0, 10 * HTTP_CONNECTOR_S * self.scale)
            with urllib.request.urlopen(self.http_url, timeout=timeout) as response:
                readings = json.load(response)
        self._count("pipeline_1.http_connector")
        with wiredprof.stage("storage", kind="storage"):
            self.http_store(readings, pipeline_name="pipeline_1")
        self._count("pipeline_1.storage")

    def pipeline_2(self) -> None:
        """mqtt_connector -> storage."""
        with wiredprof.stage("mqtt_connector", kind="mqtt_connector"):
            reading = self.inbox.receive(lambda: self._stopping("pipeline_2"), self.message_timeout_s)
        if reading is None:  # stopping
            return
        self._count("pipeline_2.mqtt_connector")
        with wiredprof.stage("storage", kind="storage"):
            self.mqtt_store(reading, pipeline_name="pipeline_2")
        self._count("pipeline_2.storage")

    def pipeline_3(self) -> None:
        """core_logic -> send, storage, send_2."""
        result = core_logic(None, self.http_store, self.core_blocks)
        self._count("pipeline_3.core_logic")
        with wiredprof.stage("send", kind="send"):
            self.sender(result, label_to_send="checksum")
        self._count("pipeline_3.send")
        with wiredprof.stage("storage", kind="storage"):
            self.core_store(result, pipeline_name="pipeline_3")
        self._count("pipeline_3.storage")
        with wiredprof.stage("send_2", kind="send"):
            self.sender_2(result)
        self._count("pipeline_3.send_2")

    def _stopping(self, name: str) -> bool:
        """True once the run's time is up, a pipeline failed, or a profiler run is over."""
        return time.monotonic() >= self.deadline or self.stop.is_set() or wiredprof.should_stop(name)

    def _loop(self, name: str, cycle: Callable[[], None]) -> None:
        try:
            while not self._stopping(name):
                with wiredprof.pipeline(name):
                    cycle()
        except Exception as exc:  # a stage failed: stop the whole flow, as wiredflow does
            with self._lock:
                self.errors.append((name, exc))
            self.stop.set()
            raise

    def run(self, seconds: float) -> None:
        """Run all pipelines for `seconds` (cycles in progress finish); raise on a failure."""
        self.deadline = time.monotonic() + seconds
        threads = [
            # Daemons: on Ctrl-C the process may leave without waiting for a long core logic.
            threading.Thread(target=self._loop, args=(name, cycle), name=name, daemon=True)
            for name, cycle in (("pipeline_1", self.pipeline_1), ("pipeline_2", self.pipeline_2),
                                ("pipeline_3", self.pipeline_3))
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            self.stop.set()
        if self.errors:
            name, exc = self.errors[0]
            raise RuntimeError(f"{name} failed: {type(exc).__name__}: {exc}") from exc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def positive(kind: type) -> Callable[[str], Any]:
        def parse(text: str) -> Any:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from None
            if not value > 0:
                raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
            return value

        return parse

    parser = argparse.ArgumentParser(
        prog="plain_flow.py", description="The reference service in plain Python, marked for wiredprof."
    )
    parser.add_argument("--scale", type=positive(float), default=0.1,
                        help="multiply every stage duration of the table by this (default 0.1)")
    parser.add_argument("--seconds", type=positive(float), default=None,
                        help="run this long (default 600 x scale); cycles in progress finish")
    parser.add_argument("--core-blocks", type=positive(int), default=None,
                        help="fix the core logic's work instead of calibrating it")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the stages' files here (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mosquitto = find_mosquitto()
    except MosquittoMissing as exc:
        print(f"plain_flow: {exc}", file=sys.stderr)
        return 2
    seconds = args.seconds if args.seconds is not None else max(5.0, 600 * args.scale)
    if args.core_blocks is None:
        calibration = calibrate_blocks(CORE_LOGIC_S * args.scale)
        core_blocks = calibration.blocks
        print(f"plain_flow: core logic calibrated to {core_blocks} blocks "
              f"= {calibration.predicted_seconds:.2f} s CPU on this machine", file=sys.stderr)
    else:
        core_blocks = args.core_blocks

    with ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="wiredprof-plain-"))
            stack.callback(shutil.rmtree, workdir, True)
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        broker = stack.enter_context(MosquittoBroker(mosquitto))
        print(f"plain_flow: mosquitto pid {broker.pid} on {LOOPBACK}:{broker.port}", file=sys.stderr)
        api = SlowHttpApi(HTTP_CONNECTOR_S * args.scale)
        stack.callback(api.close)
        inbox = MqttInbox(broker.port, MQTT_TOPIC)
        stack.callback(inbox.close)
        interval = (MQTT_CONNECTOR_S + MQTT_STORAGE_S) * args.scale
        publisher = MqttPublisher(broker.port, MQTT_TOPIC, interval)
        stack.callback(publisher.close)

        flow = PlainFlow(scale=args.scale, http_url=api.url, inbox=inbox, core_blocks=core_blocks,
                         workdir=workdir, message_timeout_s=max(10.0, 20 * interval))
        try:
            flow.run(seconds)
        except RuntimeError as exc:
            print(f"plain_flow: {exc}", file=sys.stderr)
            return 1
        core_outputs = [r["data"] for r in read_records(flow.core_store.path)]

    summary = {
        "scale": args.scale,
        "seconds": seconds,
        "core_blocks": core_blocks,
        "calls": dict(sorted(flow.calls.items())),
        "mqtt_published": publisher.published,
        "http_requests": api.requests_served,
        "core_outputs": core_outputs,
    }
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
