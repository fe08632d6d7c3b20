"""samples/_loopback.py: the loopback HTTP API, the mosquitto broker and the publisher."""
from __future__ import annotations

import ast
import json
import os
import queue
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from samples._loopback import (
    LOOPBACK,
    MOSQUITTO_ENV,
    MosquittoBroker,
    MosquittoMissing,
    MqttPublisher,
    SlowHttpApi,
    find_mosquitto,
)


def _refused(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return False
    except OSError:
        return True


def test_http_api_waits_then_answers_json_and_stops() -> None:
    api = SlowHttpApi(delay_s=0.2)
    try:
        start = time.monotonic()
        with urllib.request.urlopen(api.url, timeout=10) as response:
            body = json.load(response)
        assert time.monotonic() - start >= 0.2
        assert body == [{"sequence": 1, "value": 7919 % 1000}]
        assert api.requests_served == 1
        port = int(api.url.split(":")[2].split("/")[0])
    finally:
        api.close()
    api.close()  # idempotent
    assert _refused(port)


def test_find_mosquitto_honours_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MOSQUITTO_ENV, str(tmp_path / "nope"))
    with pytest.raises(MosquittoMissing, match="apt-get install mosquitto"):
        find_mosquitto()
    fake = tmp_path / "mosquitto"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(MOSQUITTO_ENV, str(fake))
    assert find_mosquitto() == str(fake)


def test_a_broker_that_cannot_start_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("wiredprof-mosquitto-*"))
    with pytest.raises(RuntimeError, match="mosquitto did not start"):
        MosquittoBroker("/bin/false", start_timeout_s=2, attempts=2)
    assert set(Path("/tmp").glob("wiredprof-mosquitto-*")) <= before


def test_broker_relays_the_publishers_python_literals() -> None:
    try:
        executable = find_mosquitto()
    except MosquittoMissing as exc:
        pytest.skip(str(exc))
    import paho.mqtt.client as mqtt

    received: queue.Queue[bytes] = queue.Queue()
    with MosquittoBroker(executable) as broker:
        subscriber = mqtt.Client(client_id="", protocol=mqtt.MQTTv311)
        subscriber.on_connect = lambda client, userdata, flags, rc: client.subscribe("t/readings")
        subscriber.on_message = lambda client, userdata, msg: received.put(msg.payload)
        subscriber.connect(LOOPBACK, broker.port)
        subscriber.loop_start()
        publisher = MqttPublisher(broker.port, "t/readings", interval_s=0.05)
        try:
            payload = received.get(timeout=10)
        finally:
            publisher.close()
            subscriber.disconnect()
            subscriber.loop_stop()
        reading = ast.literal_eval(payload.decode())
        assert set(reading) == {"sequence", "temperature"}
        pid = broker.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
