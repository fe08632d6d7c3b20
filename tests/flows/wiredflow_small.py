"""A small real wiredflow flow for tests; `--processes` runs it in process mode, `--fail` makes core logic raise."""
import os
import sys
import time

from wiredflow.main.build import FlowBuilder


# Decided here, not inside core_logic: an offloaded stage reads its globals as shipped
# from A, while sys.argv on host B is the worker's.
FAIL = "--fail" in sys.argv
KILL = "--kill" in sys.argv  # the core logic's process dies from SIGKILL, as under the OOM killer
MISSING_FILE = "--fail-missing-file" in sys.argv  # core logic raises FileNotFoundError (an OSError)
RUNS = os.environ.get("WIREDFLOW_SMALL_RUNS")  # a file: one line per core logic execution, wherever it ran


def spin(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def get_data(**kwargs):
    time.sleep(0.01)
    return {"value": 1}


def store(data, **kwargs):
    # Long against the GIL's 5 ms switch interval: mostly waiting on "I/O", whatever else runs.
    time.sleep(0.05)


def core_logic(relevant_info, db_connectors, **kwargs):
    if os.environ.get("WIREDFLOW_SMALL_MARKER"):
        open(os.environ["WIREDFLOW_SMALL_MARKER"], "w").close()
    if RUNS:
        with open(RUNS, "a") as f:
            f.write(f"{os.getpid()}\n")
    if KILL:
        os.kill(os.getpid(), 9)
    if FAIL:
        raise RuntimeError("core logic failed on purpose")
    if MISSING_FILE:
        with open("/nonexistent/wiredprof-test/input.csv") as f:
            return f.read()
    return {"checksum": spin(2_000_000), "pid": os.getpid(), "pipelines": sorted(db_connectors)}


def send(data, **kwargs):
    if os.environ.get("WIREDFLOW_SMALL_OUT"):
        with open(os.environ["WIREDFLOW_SMALL_OUT"], "a") as f:
            f.write(f"{data!r}\n")
    time.sleep(0.002)


def main():
    use_threads = "--processes" not in sys.argv
    builder = FlowBuilder(use_threads=use_threads)
    builder.add_pipeline("pipeline_1", timedelta_seconds=1, delay_seconds=0) \
        .with_http_connector(get_data).with_storage(store)
    builder.add_pipeline("pipeline_3", timedelta_seconds=1, delay_seconds=0) \
        .with_core_logic(core_logic).send(send).with_storage(store).send(send)
    flow = builder.build()
    try:
        flow.launch_flow(execution_seconds=3600)  # asks for an hour: wiredprof must stop it
    except AttributeError:
        # wiredflow 0.1.0 raises this after every successful process-mode run.
        if use_threads or "--no-catch" in sys.argv:
            raise


if __name__ == "__main__":
    main()
