"""A wiredflow flow whose core logic closes over a generator: it cannot travel to another host."""
import time

from wiredflow.main.build import FlowBuilder

ticks = (i for i in range(10**9))


def core_logic(relevant_info, db_connectors, **kwargs):
    return next(ticks)


def store(data, **kwargs):
    time.sleep(0.001)


if __name__ == "__main__":
    builder = FlowBuilder()
    builder.add_pipeline("pipeline_3", timedelta_seconds=1, delay_seconds=0).with_core_logic(core_logic) \
        .with_storage(store)
    builder.build().launch_flow(execution_seconds=3600)
