"""pipeline_3's core logic competes for the GIL with pipeline_2, which spins outside any stage
(as wiredflow's MQTT loop does in threads mode)."""
import threading

import wiredprof


def spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def pipeline_2() -> None:
    with wiredprof.pipeline("pipeline_2"):
        with wiredprof.stage("mqtt_connector", kind="mqtt_connector"):
            spin(1000)
    while not wiredprof.should_stop():  # a busy loop of the framework: no stage, no cycle
        spin(1000)


def pipeline_3() -> None:
    while not wiredprof.should_stop("pipeline_3"):
        with wiredprof.pipeline("pipeline_3"):
            with wiredprof.stage("core_logic", kind="core_logic"):
                spin(3_000_000)


if __name__ == "__main__":
    threads = [threading.Thread(target=f) for f in (pipeline_2, pipeline_3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
