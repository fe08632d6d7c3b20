"""A plain-Python service for tests: pipeline_3's core logic burns CPU, the rest waits."""
import sys
import threading
import time

import wiredprof


def spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


@wiredprof.stage("core_logic", kind="core_logic")
def core_logic(x: int) -> int:
    return spin(150_000)


def pipeline_1() -> None:
    while not wiredprof.should_stop("pipeline_1"):
        with wiredprof.pipeline("pipeline_1"):
            with wiredprof.stage("http_connector", kind="http_connector"):
                time.sleep(0.002)
            with wiredprof.stage("storage", kind="storage"):
                time.sleep(0.03)


def pipeline_3() -> None:
    while not wiredprof.should_stop("pipeline_3"):
        with wiredprof.pipeline("pipeline_3"):
            core_logic(1)
            with wiredprof.stage("send", kind="send"):
                time.sleep(0.001)


if __name__ == "__main__":
    print("argv:", sys.argv[1:])
    threads = [threading.Thread(target=f) for f in (pipeline_1, pipeline_3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
