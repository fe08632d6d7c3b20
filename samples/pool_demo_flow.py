"""A wiredflow service launched the way wiredflow's own examples launch theirs.

wiredflow's demos do not call `launch_flow` themselves: a helper opens a
`multiprocessing.Pool`, one worker serves a mock HTTP API and the other runs the flow.
In process mode the helper instead adds the mock server to the flow as one more
pipeline, so each pipeline (the server too) runs in a process of its own.

    pipeline "http_integers": http connector (GET the mock API) -> storage (json)
    pipeline "average":       core logic (mean of everything stored) -> send (print it)

    python samples/pool_demo_flow.py [--seconds N] [--processes] [--start-method fork|spawn|forkserver]
                                     [--port N] [--workdir DIR]

Without `--seconds` it runs until it is stopped (Ctrl-C), like the demos without
`execution_seconds`. The API listens on 127.0.0.1 (a free port unless `--port`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import random
import socket
import tempfile
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from multiprocessing import Pool
from pathlib import Path
from typing import Any, ContextManager

from wiredflow.main.build import FlowBuilder

LOCALHOST = "127.0.0.1"


class RandomIntegers(BaseHTTPRequestHandler):
    """A mock API: every GET returns one random integer."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps([{"value": random.randint(0, 100)}]).encode()
        self.send_response(200)
        self.send_header("Content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_mock_api(port: int, execution_seconds: int | None = None, **kwargs: Any) -> None:
    """Serve until stopped, or until no request came for `execution_seconds` (as wiredflow's mock does)."""
    server = HTTPServer((LOCALHOST, port), RandomIntegers)
    print(f"mock API on http://{LOCALHOST}:{port}", flush=True)
    if execution_seconds is None:
        server.serve_forever()
        return
    server.timeout = execution_seconds
    server.handle_timeout = _raise_timeout  # type: ignore[method-assign]
    try:
        while True:
            server.handle_request()
    except TimeoutError:
        server.server_close()


def _raise_timeout() -> None:
    raise TimeoutError()


def average(relevant_info: Any, db_connectors: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Core logic: the mean of every number the storage holds."""
    stored = db_connectors["http_integers"].load() or []
    values = [row["value"] for row in stored if isinstance(row, dict) and "value" in row]
    return {"count": len(values), "mean": sum(values) / len(values) if values else None}


def print_result(data: Any, **kwargs: Any) -> None:
    print(f"average: {data}", flush=True)


def build_flow(port: int, workdir: Path, use_threads: bool = True) -> FlowBuilder:
    builder = FlowBuilder(use_threads=use_threads)
    # delay_seconds: let the mock API start first (without it the first GET may be refused)
    builder.add_pipeline("http_integers", timedelta_seconds=2, delay_seconds=1) \
        .with_http_connector(source=f"http://{LOCALHOST}:{port}", headers={"accept": "application/json"}) \
        .with_storage("json", folder_to_save=workdir)
    builder.add_pipeline("average", timedelta_seconds=3, delay_seconds=1) \
        .with_core_logic(average) \
        .send(print_result)
    return builder


def _parallel_launching(mode: str, flow: Any, port: int, execution_seconds: int | None) -> None:
    if mode == "mock_api":
        serve_mock_api(port, execution_seconds)
    else:
        flow.launch_flow(execution_seconds)


def launch_with_mock_api(flow: Any, port: int, execution_seconds: int | None = None) -> Any:
    """Threads mode: the mock API in one pool worker, the flow in the other."""
    with Pool(processes=2) as pool:
        return pool.map(partial(_parallel_launching, flow=flow, port=port, execution_seconds=execution_seconds),
                        ["mock_api", "flow"])


def launch_with_mock_api_processes(builder: FlowBuilder, port: int, execution_seconds: int | None = None) -> None:
    """Process mode: the mock API is one more pipeline of the flow (a process of its own)."""
    builder.add_pipeline("mock_api", timedelta_seconds=60, delay_seconds=0) \
        .with_core_logic(serve_mock_api, port=port, execution_seconds=execution_seconds)
    flow = builder.build()
    try:
        flow.launch_flow(execution_seconds)
    except AttributeError:
        pass  # wiredflow 0.1.0 raises this after every successful process-mode run


def work_directory(workdir: Path | None, prefix: str) -> ContextManager[str]:
    """Where the storages write: `workdir`, else a directory of its own, gone when the service ends."""
    if workdir is None:
        return tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True)
    return contextlib.nullcontext(str(workdir))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=None, help="execution_seconds (default: until stopped)")
    ap.add_argument("--processes", action="store_true", help="wiredflow's process mode")
    ap.add_argument("--start-method", choices=["fork", "spawn", "forkserver"], default=None)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.start_method:
        multiprocessing.set_start_method(args.start_method, force=True)
    port = args.port or free_port()
    with work_directory(args.workdir, "pool-demo-") as workdir:
        builder = build_flow(port, Path(workdir), use_threads=not args.processes)
        if args.processes:
            launch_with_mock_api_processes(builder, port, args.seconds)
        else:
            launch_with_mock_api(builder.build(), port, args.seconds)


if __name__ == "__main__":
    main()
