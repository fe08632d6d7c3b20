"""Call-backs to host A: a stage's calls on objects that never leave A (wiredflow's storages).

A core logic reads its storages through `db_connectors[...]`: wiredflow's storage objects,
which `wiredprof.remote.serialize` keeps on A behind a proxy when the stage is offloaded.
Every such call is then a round trip from B back to A, and its work (reading a JSON file,
say) still happens on A. The planner needs them per stage call: how many, how long on A,
how many bytes would cross.

Measured the same way wherever the stage runs: the public methods of those classes are
wrapped (outermost, after the adapter's own patches), and a call counts for

- the stage running on the calling thread, when one is (the stage runs here), or
- the offloaded stage in flight, when the call comes from a proxy thread of
  `wiredprof.remote.session` (B called back).

wiredflow calling a storage's `save` as a stage of its own is not a call-back (no stage
is running on that thread, and it is no proxy thread); nor is its MQTT action handing each
message to the pipeline's storage from inside the MQTT connector: that is the chain itself.

Bytes are the size of the arguments and the result as `wiredprof.remote.serialize` pickles
them, with the time pickling and unpickling them takes (a large `load()` result costs more
to pickle than to read), measured on the first calls of each stage and every
`_MEASURE_EVERY`-th after; the time spent measuring is kept out of the stage's timings
(`Recorder.exclude`). When B called back, nothing needs measuring again: the proxy call's
own request and answer are what crossed the link, with the time unpickling the one and
pickling the other here (`remote.observers`), for every call-back.
"""
from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wiredprof.profiling.recorder import Recorder, StageAccumulator, current_recorder

if TYPE_CHECKING:  # the runner passes what install() returns to the adapter; no import of it here
    from wiredprof.adapters.wiredflow import AfterImport

__all__ = ["install", "uninstall", "offloaded_call", "A_ONLY_CLASSES", "PROXY_THREAD_PREFIX"]

log = logging.getLogger(__name__)

# (module, class) whose instances stay on A when a stage is offloaded (serialize.py keeps
# everything under wiredflow.main.store_engines there); their public methods are call-backs.
A_ONLY_CLASSES: list[tuple[str, str]] = [
    ("wiredflow.main.actions.assimilation.store_staging", "JSONStorageStage"),
    ("wiredflow.main.actions.assimilation.store_staging", "CSVStorageStage"),
    ("wiredflow.main.actions.assimilation.store_staging", "MongoStorageStage"),
    ("wiredflow.main.actions.assimilation.store_staging", "CustomStorageStage"),
]
_METHODS = ("load", "save")
PROXY_THREAD_PREFIX = "wiredprof-proxy-"  # WorkerSession's pool that serves B's call-backs
_MEASURE_FIRST = 3
_MEASURE_EVERY = 16

_originals: list[tuple[type, str, Any]] = []
# A call-back B made, served on this proxy thread: recorded once its answer's size is known.
_answering = threading.local()
# Offloaded stage calls in flight in this process, "PIPELINE.STAGE" -> count.
_in_flight: dict[str, int] = {}
_in_flight_lock = threading.Lock()


class offloaded_call:  # noqa: N801 - used as a context manager, reads like one
    """`with offloaded_call("p.stage"):` around a call of an offloaded stage on its host."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        with _in_flight_lock:
            _in_flight[self.name] = _in_flight.get(self.name, 0) + 1

    def __exit__(self, *exc: object) -> None:
        with _in_flight_lock:
            left = _in_flight.get(self.name, 0) - 1
            if left > 0:
                _in_flight[self.name] = left
            else:
                _in_flight.pop(self.name, None)


def _offloaded_stage(rec: Recorder) -> StageAccumulator | None:
    """The offloaded stage a proxy thread serves (the first in flight when several are)."""
    if not threading.current_thread().name.startswith(PROXY_THREAD_PREFIX):
        return None
    with _in_flight_lock:
        names = sorted(_in_flight)
    for name in names:
        pipeline, _, stage = name.partition(".")
        acc = rec.stages.get((pipeline, stage))
        if acc is not None:
            return acc
    return None


def _crossing(args: Any, result: Any, clock: Callable[[], float]) -> tuple[int, float, float]:
    """Bytes a call-back's arguments and result take over the link, the seconds pickling them
    here takes and the seconds unpickling them takes (as wiredprof.remote does it: what cannot
    travel stays here behind a proxy, and crosses as a reference)."""
    from wiredprof.remote.serialize import LocalObjects, dump_value, load_value

    size = 0
    pickling = unpickling = 0.0
    for value in (args, result):
        objects = LocalObjects()
        try:
            t0 = clock()
            data = dump_value(value, objects, "a call-back's value")
            t1 = clock()
            load_value(data, objects)
            t2 = clock()
        except Exception:  # noqa: BLE001 - a measurement must never break the stage
            continue
        size += len(data)
        pickling += t1 - t0
        unpickling += t2 - t1
    return size, pickling, unpickling


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def call_back(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = current_recorder()
        if rec is None:
            return original(self, *args, **kwargs)
        acc = rec.current_stage()
        remote = False
        if acc is None:
            acc = _offloaded_stage(rec)
            remote = acc is not None
        if acc is None or (not remote and acc.kind == "mqtt_connector"):
            return original(self, *args, **kwargs)
        w0, c0 = rec.clock(), rec.cpu_clock()
        result = original(self, *args, **kwargs)
        wall, cpu = rec.clock() - w0, rec.cpu_clock() - c0
        if remote:
            _answering.call = (rec, acc, wall, cpu)  # see _proxy_answered
            return result
        sized, pickling, unpickling = -1, 0.0, 0.0
        seen = acc.callbacks + 1
        if seen <= _MEASURE_FIRST or seen % _MEASURE_EVERY == 0:
            # Measured here, in the flow's thread, so the GIL and cores it competes for are
            # those the proxy thread serving B would compete for; then kept out of the stage.
            m0, mc0 = rec.clock(), rec.cpu_clock()
            sized, pickling, unpickling = _crossing((args, kwargs), result, rec.clock)
            rec.exclude(rec.clock() - m0, rec.cpu_clock() - mc0, untimed_cycle=True)
        rec.add_callback(acc, wall, cpu, sized, pickling, unpickling)
        return result

    call_back.wiredprof_callback = True  # type: ignore[attr-defined]
    return call_back


def _proxy_answered(size: int, unpickle_s: float, pickle_s: float) -> None:
    """A proxy call was answered on this thread: if it was a call-back of an offloaded stage, record it
    with the bytes that crossed (request and answer) and the time they took to unpickle and pickle."""
    call = getattr(_answering, "call", None)
    if call is None:
        return
    _answering.call = None
    rec, acc, wall, cpu = call
    rec.add_callback(acc, wall, cpu, size, pickle_s, unpickle_s)


def _patch_classes() -> None:
    # Decide now, on the importing thread before any pipeline runs, which of the modules
    # imported so far would travel by value: done at the first measured call-back, on the
    # flow's thread, that scan (hundreds of paths) stalled an MQTT pipeline for 4 s while
    # wiredflow's own MQTT loop held the GIL.
    from wiredprof.remote.serialize import register_project_modules

    register_project_modules()
    if _originals:
        return
    for module_name, cls_name in A_ONLY_CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            log.debug("no %s.%s: its call-backs are not counted", module_name, cls_name)
            continue
        for method in _METHODS:
            current = getattr(cls, method, None)
            if current is None or getattr(current, "wiredprof_callback", False):
                continue
            # Outermost, over the adapter's stage wrapper when there is one.
            _originals.append((cls, method, cls.__dict__.get(method)))
            setattr(cls, method, _wrap(current))


def install(rec: Recorder) -> AfterImport:
    """Count call-backs for `rec`'s run; pass what it returns to the wiredflow adapter's
    `install_import_hook`, which runs it once the flow imports wiredflow (it patches the classes)."""
    from wiredprof.remote.observers import proxy_observers

    rec.extra_handlers["callback"] = lambda r: rec.add_callback(rec.stage(r[1], r[2]), *r[3:8])
    if _proxy_answered not in proxy_observers:
        proxy_observers.append(_proxy_answered)
    return _patch_classes


def uninstall() -> None:
    """Undo the patches (tests run several flows in one process)."""
    while _originals:
        cls, method, original = _originals.pop()
        if original is None:
            delattr(cls, method)
        else:
            setattr(cls, method, original)
    from wiredprof.remote.observers import proxy_observers

    if _proxy_answered in proxy_observers:
        proxy_observers.remove(_proxy_answered)
    with _in_flight_lock:
        _in_flight.clear()
