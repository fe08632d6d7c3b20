"""A flow in a pool worker beside a worker that ignores SIGTERM: the pool's terminate() would wait for ever."""
import signal
import time
from functools import partial
from multiprocessing import Pool

from wiredflow.main.build import FlowBuilder


def read(**kwargs):
    return {"value": 1}


def _work(mode, flow):
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
    else:
        flow.launch_flow()


if __name__ == "__main__":
    builder = FlowBuilder()
    builder.add_pipeline("polling", timedelta_seconds=1, delay_seconds=0).with_http_connector(read)
    with Pool(processes=2) as pool:
        pool.map(partial(_work, flow=builder.build()), ["stubborn", "flow"])
