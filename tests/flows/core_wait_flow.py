"""A real wiredflow flow with stages of very different lengths, to check core wait against the
kernel's own count: three pipelines whose connector and storage take ~0.1 ms of CPU each, and
one whose core logic computes for ~0.3 s; `--processes` runs it in process mode.

Each stage call also reads its own thread's run delay (/proc/thread-self/schedstat) before and
after its work and appends "FUNCTION delay_ns" to the file $CORE_WAIT_TRUTH: the time its
thread really spent queued for a core inside the call, to compare with what wiredprof reports.
"""
import os
import sys

from wiredflow.main.build import FlowBuilder

TRUTH = os.environ.get("CORE_WAIT_TRUTH")


def _run_delay_ns():
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1])


def _work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def _measured(fn):
    def stage(*args, **kwargs):
        before = _run_delay_ns()
        result = fn(*args, **kwargs)
        delay = _run_delay_ns() - before
        if TRUTH:
            with open(TRUTH, "a") as f:
                f.write(f"{fn.__name__} {delay}\n")
        return result

    stage.__name__ = fn.__name__
    return stage


@_measured
def read(**kwargs):
    return {"value": _work(1500)}  # about 0.1 ms


@_measured
def store(data, **kwargs):
    _work(1500)


@_measured
def compute(relevant_info, db_connectors, **kwargs):
    return {"value": _work(4_000_000)}  # about 0.3 s


if __name__ == "__main__":
    builder = FlowBuilder(use_threads="--processes" not in sys.argv)
    for name in ("a", "b", "c"):
        builder.add_pipeline(name, timedelta_seconds=1, delay_seconds=0).with_http_connector(read).with_storage(store)
    builder.add_pipeline("heavy", timedelta_seconds=1, delay_seconds=0).with_core_logic(compute)
    builder.build().launch_flow(execution_seconds=3600)
