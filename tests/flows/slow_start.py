"""A real wiredflow flow that takes a while to start (loading a model, warming a cache) before
`launch_flow`; `--warmup S` sets how long, `--processes` runs it in process mode."""
import sys
import time

from wiredflow.main.build import FlowBuilder


def read(**kwargs):
    return {"value": 1}


def store(data, **kwargs):
    time.sleep(0.01)


def main():
    warmup = float(sys.argv[sys.argv.index("--warmup") + 1]) if "--warmup" in sys.argv else 0.0
    time.sleep(warmup)  # the start-up: no pipeline runs yet
    use_threads = "--processes" not in sys.argv
    builder = FlowBuilder(use_threads=use_threads)
    builder.add_pipeline("polling", timedelta_seconds=1, delay_seconds=0).with_http_connector(read).with_storage(store)
    try:
        builder.build().launch_flow(execution_seconds=3600)
    except AttributeError:
        if use_threads:  # wiredflow 0.1.0 raises this after every successful process-mode run
            raise


if __name__ == "__main__":
    main()
