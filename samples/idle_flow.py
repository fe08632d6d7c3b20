"""A weather station on real wiredflow 0.1.0 that spends its time waiting for its schedule.

Written the way wiredflow's README writes services, not tuned to wiredprof:

    weather:  http connector (GET a weather API every --period s) -> storage
    sensors:  mqtt connector (readings a sensor publishes every --publish-every s) -> storage

Each cycle takes a few milliseconds; the weather pipeline then sleeps until its next period,
and the sensors pipeline waits for the next message. No stage is a bottleneck: the flow is
limited by its schedule. What does cost something is wiredflow's own MQTT loop: its pipeline
thread spins on `client.loop_start()` for as long as the flow runs (wiredflow 0.1.0,
action_input_mqtt.py:57-59), burning a core's worth of CPU outside any stage. `--sensors N`
runs N such MQTT pipelines (N loops spinning).

The parts are real, on 127.0.0.1: an HTTP server (samples/_loopback.py), Debian's
mosquitto on a free port, a publisher thread. Prints one line `idle_flow summary: {json}`.

    PYTHONPATH=$PWD python samples/idle_flow.py [--period 10] [--seconds 30] [--sensors 1] [--processes]
    wiredprof analyze samples/idle_flow.py --duration 20
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run by path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samples import _loopback as loopback  # noqa: E402
from samples._io_stages import JsonLinesStore, count_lines  # noqa: E402

SUMMARY_PREFIX = "idle_flow summary: "
TOPIC = "station/sensors/{n}"
API_DELAY_S = 0.02  # the weather API answers in 20 ms
STORAGE_S = 0.005  # a storage write takes 5 ms


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="idle_flow.py", description=__doc__.split("\n")[0])
    parser.add_argument("--period", type=float, default=10.0, help="seconds between weather requests (10)")
    parser.add_argument("--publish-every", type=float, default=0.5, help="seconds between sensor readings (0.5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the service runs (30)")
    parser.add_argument("--sensors", type=int, default=1, help="MQTT pipelines, one topic each (1)")
    parser.add_argument("--processes", action="store_true", help="wiredflow's process mode")
    args = parser.parse_args(argv)
    if not (args.period > 0 and args.publish_every > 0 and args.seconds > 0 and args.sensors >= 1):
        parser.error("--period, --publish-every and --seconds must be > 0, --sensors >= 1")
    return args


def build_flow(args: argparse.Namespace, api_url: str, mqtt_port: int, workdir: Path) -> Any:
    from wiredflow.main.build import FlowBuilder

    flow_builder = FlowBuilder(use_threads=not args.processes)
    flow_builder.add_pipeline("weather", timedelta_seconds=args.period, delay_seconds=0) \
        .with_http_connector("get", source=api_url) \
        .with_storage(JsonLinesStore(workdir / "weather.jsonl", STORAGE_S))
    for n in range(1, args.sensors + 1):
        name = "sensors" if n == 1 else f"sensors_{n}"
        flow_builder.add_pipeline(name) \
            .with_mqtt_connector(source=loopback.LOOPBACK, port=mqtt_port, topic=TOPIC.format(n=n)) \
            .with_storage(JsonLinesStore(workdir / f"{name}.jsonl", STORAGE_S))
    return flow_builder.build()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        mosquitto = loopback.find_mosquitto()
    except loopback.MosquittoMissing as exc:
        print(f"idle_flow: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="wiredprof-idle-"))
        stack.callback(shutil.rmtree, workdir, True)
        broker = stack.enter_context(loopback.MosquittoBroker(mosquitto))
        api = loopback.SlowHttpApi(API_DELAY_S)
        stack.callback(api.close)
        publishers = [loopback.MqttPublisher(broker.port, TOPIC.format(n=n), args.publish_every)
                      for n in range(1, args.sensors + 1)]
        for publisher in publishers:
            stack.callback(publisher.close)
        flow = build_flow(args, api.url, broker.port, workdir)
        try:
            flow.launch_flow(execution_seconds=args.seconds)
        except AttributeError as exc:  # wiredflow 0.1.0 after every successful process-mode run
            if not args.processes or "status" not in str(exc):
                raise
        summary = {
            "mode": "processes" if args.processes else "threads",
            "weather_requests": api.requests_served,
            "stored": {p.name: count_lines(p) for p in sorted(workdir.glob("*.jsonl"))},
            "published": sum(p.published for p in publishers),
        }
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
