"""Four flows in one script, one after another, as wiredflow's storage demo runs them.

Each call builds a small flow (pipeline "http_integers": http connector -> storage) with
another storage configuration and launches it next to a mock API, in a pool:

    1. json storage               2. csv storage
    3. json with a datetime added 4. json, overwritten on every save

All four pipelines have the same name: a profiler must keep the four flows apart.

    python samples/storages_flow.py [--seconds 10] [--processes] [--workdir DIR]

`--processes`: wiredflow's process mode, the mock API being one more pipeline of each flow.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

try:
    from samples.pool_demo_flow import (free_port, launch_with_mock_api, launch_with_mock_api_processes,
                                        work_directory)
except ModuleNotFoundError:  # run as `python samples/storages_flow.py` without PYTHONPATH
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples.pool_demo_flow import (free_port, launch_with_mock_api, launch_with_mock_api_processes,
                                        work_directory)

from wiredflow.main.build import FlowBuilder  # noqa: E402


def launch_flow_with_storage(storage: str, seconds: int, processes: bool, **params: Any) -> None:
    """One flow: GET the mock API every 2 s and keep the answers in `storage`."""
    port = free_port()
    builder = FlowBuilder(use_threads=not processes)
    builder.add_pipeline("http_integers", timedelta_seconds=2, delay_seconds=1) \
        .with_http_connector(source=f"http://127.0.0.1:{port}", headers={"accept": "application/json"}) \
        .with_storage(storage, **params)
    if processes:
        launch_with_mock_api_processes(builder, port, execution_seconds=seconds)
    else:
        launch_with_mock_api(builder.build(), port, execution_seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="execution_seconds of each flow")
    ap.add_argument("--processes", action="store_true", help="wiredflow's process mode")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    with work_directory(args.workdir, "storages-flow-") as folder:
        work = Path(folder)
        launch_flow_with_storage("json", args.seconds, args.processes, folder_to_save=work / "json_storage")
        launch_flow_with_storage("csv", args.seconds, args.processes, folder_to_save=work / "csv_storage")
        launch_flow_with_storage("json", args.seconds, args.processes, preprocessing="add_datetime",
                                 folder_to_save=work / "preprocessing")
        launch_flow_with_storage("json", args.seconds, args.processes, mapping="overwrite",
                                 folder_to_save=work / "overwrite")


if __name__ == "__main__":
    main()
