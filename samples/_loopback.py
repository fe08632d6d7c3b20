"""Real services on 127.0.0.1 for the samples: a slow HTTP API, a mosquitto broker, a publisher.

Everything here binds to loopback only and is stopped by `close()` (also from `atexit`,
and from a dying parent for mosquitto, through Linux's parent-death signal).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "LOOPBACK",
    "MOSQUITTO_ENV",
    "MosquittoBroker",
    "MosquittoMissing",
    "MqttPublisher",
    "SlowHttpApi",
    "find_mosquitto",
    "free_port",
]

LOOPBACK = "127.0.0.1"
MOSQUITTO_ENV = "WIREDPROF_MOSQUITTO"
_MOSQUITTO_FALLBACKS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class MosquittoMissing(RuntimeError):
    """The mosquitto broker executable is not installed (or not where it was said to be)."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"mosquitto (the MQTT broker this sample starts) was not found{where}; "
            "install it with: apt-get install mosquitto"
        )


def find_mosquitto() -> str:
    """Path of the mosquitto executable: $WIREDPROF_MOSQUITTO, else PATH, else /usr/sbin."""
    override = os.environ.get(MOSQUITTO_ENV)
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise MosquittoMissing(f" at {override} (from ${MOSQUITTO_ENV})")
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _MOSQUITTO_FALLBACKS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise MosquittoMissing("")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, deadline_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + deadline_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process serving port {port} exited with code {proc.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {deadline_s} s") from None
            time.sleep(0.02)


class _ReadingsHandler(BaseHTTPRequestHandler):
    """GET anything: wait like a slow remote API, then answer a JSON list of readings."""

    server: _ApiServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        time.sleep(self.server.delay_s)
        seq = self.server.next_sequence()
        body = json.dumps([{"sequence": seq, "value": (seq * 7919) % 1000}]).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: a request log line per cycle would drown the flow's own output."""


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        super().__init__((LOOPBACK, 0), _ReadingsHandler)
        self.delay_s = delay_s
        self._sequence = 0
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    @property
    def requests_served(self) -> int:
        return self._sequence


class SlowHttpApi:
    """An HTTP server on a free loopback port whose every GET takes `delay_s` seconds."""

    def __init__(self, delay_s: float) -> None:
        self._server = _ApiServer(delay_s)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="sample-http-api", daemon=True,
        )
        self._closed = False
        self._thread.start()
        atexit.register(self.close)

    @property
    def requests_served(self) -> int:
        """GET requests answered so far."""
        return self._server.requests_served

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_port}/readings"

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _load_prctl() -> Any:
    """libc's prctl, loaded in the parent: the child between fork and exec must not import."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class MosquittoBroker:
    """Debian's mosquitto, started on a free 127.0.0.1 port, anonymous, no persistence."""

    def __init__(self, executable: str | None = None, start_timeout_s: float = 10.0,
                 attempts: int = 3) -> None:
        self.executable = executable or find_mosquitto()
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)
        for attempt in range(1, attempts + 1):
            try:
                self._launch(free_port(), start_timeout_s)
                return
            except RuntimeError:
                # Most likely another program took the port between free_port() and bind.
                if attempt == attempts:
                    raise

    def _launch(self, port: int, start_timeout_s: float) -> None:
        self.port = port
        self._dir = Path(tempfile.mkdtemp(prefix="wiredprof-mosquitto-"))
        config = self._dir / "mosquitto.conf"
        config.write_text(
            f"listener {port} {LOOPBACK}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
        )
        self._log = open(self._dir / "mosquitto.log", "wb")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            [self.executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
        self.pid = self._proc.pid
        try:
            _wait_for_port(port, start_timeout_s, self._proc)
        except BaseException as exc:
            log = self.log_text()
            self.close()
            if isinstance(exc, Exception):
                raise RuntimeError(f"mosquitto did not start on port {port}: {exc}; log: {log!r}") from exc
            raise

    def log_text(self) -> str:
        try:
            return (self._dir / "mosquitto.log").read_text(errors="replace").strip()
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and remove its files (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MqttPublisher:
    """Publishes a Python-literal dict to `topic` every `interval_s` seconds, from a thread.

    Payloads are `repr()` of a dict because wiredflow 0.1.0 `eval()`s each payload.
    """

    def __init__(self, port: int, topic: str, interval_s: float) -> None:
        import paho.mqtt.client as mqtt  # wiredflow depends on paho-mqtt 1.6

        self.topic = topic
        self.interval_s = interval_s
        self.published = 0
        self._stop = threading.Event()
        self._client = mqtt.Client(client_id="", protocol=mqtt.MQTTv311)
        self._client.connect(LOOPBACK, port, keepalive=30)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="sample-mqtt-publisher", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            payload = {"sequence": self.published + 1, "temperature": 20 + (self.published * 37) % 15}
            self._client.publish(self.topic, repr(payload), qos=0)
            self.published += 1
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        """Stop publishing and disconnect (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()
