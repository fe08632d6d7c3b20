"""A real wiredflow flow whose core logic hangs (60 s): nothing cooperative can stop it mid-call.

`--processes` runs it in process mode.
"""
import sys
import time

from wiredflow.main.build import FlowBuilder


def read(**kwargs):
    return {"value": 1}


def hang(relevant_info, db_connectors, **kwargs):
    time.sleep(60)


def main():
    builder = FlowBuilder(use_threads="--processes" not in sys.argv)
    builder.add_pipeline("quick", timedelta_seconds=1, delay_seconds=0).with_http_connector(read)
    builder.add_pipeline("stuck", timedelta_seconds=1, delay_seconds=0).with_core_logic(hang)
    try:
        builder.build().launch_flow()
    except AttributeError:
        pass  # wiredflow 0.1.0 after a process-mode run


if __name__ == "__main__":
    main()
