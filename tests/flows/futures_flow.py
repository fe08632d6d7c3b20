"""A flow launched in a `concurrent.futures` process pool; `--spawn` uses the spawn start method."""
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

from wiredflow.main.build import FlowBuilder


# Read here, not inside read(): an offloaded stage sees its globals as shipped from here.
OUT = os.environ.get("FUTURES_FLOW_OUT")


def read(**kwargs):
    if OUT:
        with open(OUT, "a") as f:
            f.write(f"{os.getpid()}\n")
    return {"value": 1}


def store(data, **kwargs):
    pass


def run():
    builder = FlowBuilder()
    builder.add_pipeline("polling", timedelta_seconds=1, delay_seconds=0).with_http_connector(read).with_storage(store)
    builder.build().launch_flow(execution_seconds=3600)


if __name__ == "__main__":
    context = multiprocessing.get_context("spawn" if "--spawn" in sys.argv else "fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        executor.submit(run).result()
