"""A small wiredflow flow whose core logic needs a third-party distribution on the host it runs on.

The module is `WIREDFLOW_NEEDS_MODULE` (default `tabulate`); the send stage appends what core
logic returned to `WIREDFLOW_NEEDS_OUT`, so a run here and a run with core logic elsewhere can
be compared line by line.
"""
import importlib
import os

from wiredflow.main.build import FlowBuilder

lib = importlib.import_module(os.environ.get("WIREDFLOW_NEEDS_MODULE", "tabulate"))


def get_data(**kwargs):
    return {"value": 7}


def store(data, **kwargs):
    pass


def core_logic(relevant_info, db_connectors, **kwargs):
    value = (relevant_info or {}).get("value", 0)
    if hasattr(lib, "tabulate"):
        return {"table": lib.tabulate([[value, value * value]]), "version": lib.__version__}
    return {"table": lib.render(value), "version": lib.__version__}


def send(data, **kwargs):
    if os.environ.get("WIREDFLOW_NEEDS_OUT"):
        with open(os.environ["WIREDFLOW_NEEDS_OUT"], "a") as f:
            f.write(f"{data!r}\n")


def main():
    builder = FlowBuilder(use_threads=True)
    builder.add_pipeline("pipeline_1", timedelta_seconds=1, delay_seconds=0) \
        .with_http_connector(get_data).with_core_logic(core_logic).send(send)
    builder.build().launch_flow(execution_seconds=3600)  # wiredprof stops it


if __name__ == "__main__":
    main()
