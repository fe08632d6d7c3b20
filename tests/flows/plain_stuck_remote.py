"""A plain-Python flow whose core logic never returns in time (for run-deadline tests)."""
import threading
import time

import wiredprof


@wiredprof.stage("core_logic", kind="core_logic")
def core_logic(x: int) -> int:
    time.sleep(300)
    return x


def pipeline_3() -> None:
    while not wiredprof.should_stop("pipeline_3"):
        with wiredprof.pipeline("pipeline_3"):
            try:
                core_logic(1)
            except Exception:
                pass


if __name__ == "__main__":
    t = threading.Thread(target=pipeline_3)
    t.start()
    t.join()
