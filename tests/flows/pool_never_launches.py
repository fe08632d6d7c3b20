"""A flow file in the style of wiredflow's demos whose pool worker never gets to launch_flow."""
import time
from multiprocessing import Pool

from wiredflow.main.build import FlowBuilder


def _work(mode):
    if mode == "server":
        time.sleep(3600)  # a demo server that never ends
    else:
        time.sleep(3600)  # "warming up" before launch_flow, for ever
        build().launch_flow()


def build():
    builder = FlowBuilder()
    builder.add_pipeline("p", timedelta_seconds=1).with_http_connector(lambda **kw: 1)
    return builder.build()


if __name__ == "__main__":
    with Pool(processes=2) as pool:
        pool.map(_work, ["server", "flow"])
