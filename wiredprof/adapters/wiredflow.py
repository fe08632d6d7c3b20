"""Instruments real wiredflow 0.1.0 flows at run time; the user's flow file stays untouched.

Patched (class and module attributes, before the flow starts, so forked pipeline
processes inherit them):

- `FlowProcessor.initialize_internal_structure`: afterwards, map every stage object to
  (pipeline, index, kind, name) and note threads or processes mode;
- every leaf stage method (`CoreLogicInterface.launch`, `CustomStorageStage.save`, ...):
  one timed call per invocation;
- `mqtt_stage.mqtt_on_message`: the MQTT connector (its nested storage save is timed
  apart), run on paho's network thread; one message is one cycle of its pipeline;
- `Action.perform_action`: one cycle (a pass over the chain) of an HTTP or full pipeline;
- `flow.launch_pipeline`: knows which pipeline a thread or process runs, flushes child
  processes' records, and reports a stage failure's original traceback;
- `WiredTimer`: wiredflow's own loops ask it whether time is up, so `--duration` and
  `--runs` stop the flow the way its `execution_seconds` does, cleanly.
"""
from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from collections.abc import Sequence
from typing import Any, Callable, Protocol

from wiredprof.adapters import stage_swap
from wiredprof.profiling.control import current_control
from wiredprof.profiling.instrument import timed_call
from wiredprof.profiling.recorder import Recorder, current_recorder

__all__ = ["StageRef", "AfterImport", "install_import_hook", "instrument", "uninstall", "stage_kind"]

log = logging.getLogger(__name__)

# (module, class, method, kind) of every leaf stage method of wiredflow 0.1.0.
_STAGE_METHODS: list[tuple[str, str, str, str]] = [
    ("wiredflow.main.actions.stages.core_stage", "CoreLogicInterface", "launch", "core_logic"),
    ("wiredflow.main.actions.stages.configuration_stage", "ConfigurationInterface", "launch", "configuration"),
    ("wiredflow.main.actions.stages.http_stage", "StageGetHTTPConnector", "get", "http_connector"),
    ("wiredflow.main.actions.stages.http_stage", "StagePostHTTPConnector", "get", "http_connector"),
    ("wiredflow.main.actions.stages.http_stage", "StageCustomHTTPConnector", "get", "http_connector"),
    ("wiredflow.main.actions.assimilation.store_staging", "CustomStorageStage", "save", "storage"),
    ("wiredflow.main.actions.assimilation.store_staging", "JSONStorageStage", "save", "storage"),
    ("wiredflow.main.actions.assimilation.store_staging", "CSVStorageStage", "save", "storage"),
    ("wiredflow.main.actions.assimilation.store_staging", "MongoStorageStage", "save", "storage"),
    ("wiredflow.main.actions.stages.send_stage", "MQTTSendStage", "send", "send"),
    ("wiredflow.main.actions.stages.send_stage", "HTTPPUTSendStage", "send", "send"),
    ("wiredflow.main.actions.stages.send_stage", "HTTPPOSTSendStage", "send", "send"),
    ("wiredflow.main.actions.stages.send_stage", "CustomSendStage", "send", "send"),
]


@dataclass(frozen=True)
class StageRef:
    """Where a wiredflow stage object sits: its pipeline, position and name."""

    pipeline: str
    index: int
    kind: str
    stage: str
    function: str


# id(stage object) -> StageRef; filled in the parent before threads or processes start,
# so forked children inherit it (ids survive fork).
_stages: dict[int, StageRef] = {}
_originals: list[tuple[Any, str, Any]] = []
_mqtt_connectors: dict[str, StageRef] = {}  # pipeline -> its MQTT connector (index 0)
_local = threading.local()


class AfterImport(Protocol):
    """What to do once the flow has imported wiredflow, after the adapter's own patches.

    Passed to `install_import_hook` by whoever installs it: the runner and a profiled child
    process (call-back counting, `profiling.callbacks`), discovery (its `launch_flow`).
    """

    def __call__(self) -> None: ...


def stage_kind(stage: Any) -> str:
    """The kind of a compiled wiredflow stage object (core_logic, storage, send, ...)."""
    for cls in type(stage).__mro__:
        name = cls.__name__
        if "MQTT" in name and "Connector" in name:
            return "mqtt_connector"
        if "HTTPConnector" in name:
            return "http_connector"
        if "Storage" in name:
            return "storage"
        if "Send" in name:
            return "send"
        if "CoreLogic" in name:
            return "core_logic"
        if "Configuration" in name:
            return "configuration"
    return type(stage).__name__


def _function_name(stage: Any) -> str:
    fn = getattr(stage, "function_to_launch", None)
    if fn is not None:
        # A function's own name; for a callable object, its class's.
        return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)
    return type(stage).__name__


def map_stages(processing_pool: dict[str, Any], names: dict[str, str] | None = None) -> list[StageRef]:
    """Name every stage of every pipeline: kind, plus an index where the kind repeats.

    `names` maps a pipeline's own name to its name in the profile (a later flow of the
    same script reusing a pipeline name gets `#N`). The ref is kept on the stage object
    too, so it travels with the object when a spawned process receives it pickled.
    """
    refs = []
    for pipeline_name, pipeline in processing_pool.items():
        qualified = (names or {}).get(str(pipeline_name), str(pipeline_name))
        _set_attr(pipeline.action, _PIPELINE_ATTR, qualified)
        stages = list(pipeline.action.init_stages)
        kinds = [stage_kind(s) for s in stages]
        seen: dict[str, int] = {}
        for index, (stage, kind) in enumerate(zip(stages, kinds)):
            seen[kind] = seen.get(kind, 0) + 1
            name = kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"
            ref = StageRef(qualified, index, kind, name, _function_name(stage))
            _stages[id(stage)] = ref
            _set_attr(stage, _REF_ATTR, ref)
            refs.append(ref)
    return refs


_REF_ATTR = "_wiredprof_ref"
_PIPELINE_ATTR = "_wiredprof_pipeline"


def _set_attr(obj: Any, attr: str, value: Any) -> None:
    try:
        setattr(obj, attr, value)
    except (AttributeError, TypeError):  # __slots__: the id map still knows it in this process
        pass


def _ref_of(stage: Any) -> StageRef | None:
    ref: StageRef | None = getattr(stage, _REF_ATTR, None)
    return ref if ref is not None else _stages.get(id(stage))


def _pipeline_of(action: Any) -> str:
    """The pipeline's name in the profile (its own name, or `NAME#N` in a later flow)."""
    return str(getattr(action, _PIPELINE_ATTR, None) or action.pipeline_name)


def _accumulator(rec: Recorder, ref: StageRef) -> Any:
    return rec.stage(ref.pipeline, ref.stage, ref.kind, ref.index, ref.function)


def _wrap_stage_method(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def stage_method(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = current_recorder()
        ref = _ref_of(self)
        if rec is None or ref is None:
            return original(self, *args, **kwargs)
        target: Callable[..., Any] = functools.partial(original, self)
        swap = stage_swap()  # offload swaps in a remote proxy here
        if swap is not None:
            target = swap.wiredflow_stage(ref, self, target) or target
        return timed_call(rec, _accumulator(rec, ref), target, *args, **kwargs)

    return stage_method


def _wrap_on_message(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def mqtt_on_message(client: Any, userdata: Any, message: Any) -> Any:
        rec = current_recorder()
        saver = _ref_of(getattr(userdata, "db_saver", None))
        if rec is None or saver is None:
            return original(client, userdata, message)
        ref = _mqtt_connectors.get(saver.pipeline) or next(
            (r for r in _stages.values() if r.pipeline == saver.pipeline and r.index == 0), None)
        if ref is None:
            return original(client, userdata, message)
        rec.register_thread(ref.pipeline, "mqtt-network")
        start = rec.clock()
        failed = False
        try:
            return timed_call(rec, _accumulator(rec, ref), original, client, userdata, message)
        except Exception:
            failed = True
            raise
        finally:
            rec.add_cycle(ref.pipeline, rec.clock() - start, failed)

    return mqtt_on_message


def _wrap_perform_action(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def perform_action(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = current_recorder()
        if rec is None:
            return original(self, *args, **kwargs)
        pipeline = _pipeline_of(self)
        control = current_control()
        if control is not None and control.should_stop(pipeline):
            return None  # wiredflow runs a first cycle unconditionally, even after a stop
        start = rec.clock()
        failed = False
        try:
            return original(self, *args, **kwargs)
        except Exception:
            failed = True
            raise
        finally:
            rec.add_cycle(pipeline, rec.clock() - start, failed)

    return perform_action


def _wrap_initialize(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def initialize_internal_structure(self: Any) -> Any:
        result = original(self)
        rec = current_recorder()
        if rec is not None:
            rec.mode = "threads" if getattr(self, "use_threads", True) else "processes"
            control = current_control()
            names = None
            if control is not None:
                entry = control.register_flow([str(n) for n in self.processing_pool], rec.mode)
                self._wiredprof_flow = entry.number
                names = entry.pipelines
            map_stages(self.processing_pool, names)
            for ref in _stages.values():
                if ref.index == 0 and ref.kind == "mqtt_connector":
                    _mqtt_connectors[ref.pipeline] = ref
            for ref in _stages.values():
                _accumulator(rec, ref)  # every stage shows up, even one never called
            if rec.mode == "processes":
                rec.open_inbox()
        _reset_failure_singleton()
        return result

    return initialize_internal_structure


def _wrap_launch_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def launch_pipeline(pipeline: Any, timeout_timer: Any, failures_checker: Any) -> Any:
        rec = current_recorder()
        if rec is None:
            return original(pipeline, timeout_timer, failures_checker)
        name = _pipeline_of(pipeline.action)
        _local.pipeline = name
        rec.register_thread(name, "pipeline")
        try:
            return original(pipeline, timeout_timer, failures_checker)
        finally:
            rec.on_pipeline_end(name)
            rec.flush()

    return launch_pipeline


def _wrap_launch_flow(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def launch_flow(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            control = current_control()
            number = getattr(self, "_wiredprof_flow", None)
            if control is not None and number is not None:
                try:
                    control.end_flow(number)
                except OSError:  # the run is over and its files are gone
                    log.debug("wiredprof: could not mark flow #%s as ended", number, exc_info=True)

    return launch_flow


class _StoppableTime:
    """The `time` module as wiredflow's loops see it: their sleeps end as soon as the run should stop.

    wiredflow sleeps up to 10 s between polls (and 10 s before a core logic's first run):
    Ctrl-C and --duration must not wait for that.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        control = current_control()
        if control is None:
            time.sleep(seconds)
        else:
            control.sleep(seconds, _current_pipeline())


def _watched_process_class(original: type) -> type:
    """wiredflow's `Process`, reporting a pipeline process that a signal killed (the OOM killer)."""

    class WatchedProcess(original):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # start() drops its arguments: remember which pipeline this process runs now.
            first = (kwargs.get("args") or ())[:1]
            self.wiredprof_pipeline = str(getattr(first[0], "pipeline_name", "?")) if first else "?"

        def join(self, timeout: float | None = None) -> None:
            super().join(timeout)
            code = self.exitcode
            rec = current_recorder()
            if rec is not None and code is not None and code < 0:
                try:
                    rec.process_killed(self.wiredprof_pipeline, self.pid or 0, -code)
                except Exception:  # the flow's own join must not fail because of the report
                    log.exception("wiredprof: could not record a killed pipeline process")

    WatchedProcess.__name__ = WatchedProcess.__qualname__ = original.__name__
    # Found by this name when pickled (spawn start method): the patched attribute below.
    WatchedProcess.__module__ = "wiredflow.main.flow"
    return WatchedProcess


def _current_pipeline() -> str | None:
    return getattr(_local, "pipeline", None)


def _wrap_timer_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, execution_seconds: Any) -> None:
        # With no limit, wiredflow's MQTT loop never consults the timer; give it one so
        # every loop asks the (patched) timer whether to stop.
        if execution_seconds is None and current_control() is not None:
            execution_seconds = 10**9
        original(self, execution_seconds)

    return __init__


def _wrap_is_limit_reached(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def is_limit_reached(self: Any) -> bool:
        control = current_control()
        if control is not None and control.should_stop(_current_pipeline()):
            return True
        return bool(original(self))

    return is_limit_reached


def _wrap_will_limit_be_reached(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def will_limit_be_reached(self: Any, sleep_seconds: float) -> bool:
        control = current_control()
        if control is not None and control.will_stop_within(_current_pipeline(), sleep_seconds):
            return True
        return bool(original(self, sleep_seconds))

    return will_limit_be_reached


def _reset_failure_singleton() -> None:
    """wiredflow never resets its failure singleton: a second run would re-raise the first's error."""
    try:
        from wiredflow.messages.failures_check import FailuresCheckMeta

        FailuresCheckMeta._instances.clear()
    except Exception:  # pragma: no cover - other wiredflow versions
        log.debug("could not reset wiredflow's failure singleton", exc_info=True)


def _patch(owner: Any, attr: str, wrapper: Callable[[Any], Any]) -> None:
    original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
    _originals.append((owner, attr, original))
    setattr(owner, attr, wrapper(original))


def instrument() -> None:
    """Patch the imported wiredflow package (idempotent)."""
    if _originals:
        return
    for module_name, cls_name, method, _kind in _STAGE_METHODS:
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            log.warning("wiredprof: wiredflow has no %s.%s; its calls are not timed", module_name, cls_name)
            continue
        if method in cls.__dict__:
            _patch(cls, method, _wrap_stage_method)
    from wiredflow.main import flow
    from wiredflow.main.actions import action_input_http, action_interface, actions_full
    from wiredflow.main.actions.stages import mqtt_stage
    from wiredflow.wiredtimer import timer

    _patch(flow.FlowProcessor, "initialize_internal_structure", _wrap_initialize)
    _patch(flow.FlowProcessor, "launch_flow", _wrap_launch_flow)
    _patch(actions_full, "time", lambda original: _StoppableTime())
    _patch(action_input_http, "time", lambda original: _StoppableTime())
    _patch(flow, "launch_pipeline", _wrap_launch_pipeline)
    _patch(flow, "Process", _watched_process_class)
    _patch(action_interface.Action, "perform_action", _wrap_perform_action)
    _patch(mqtt_stage, "mqtt_on_message", _wrap_on_message)
    _patch(timer.WiredTimer, "__init__", _wrap_timer_init)
    _patch(timer.WiredTimer, "is_limit_reached", _wrap_is_limit_reached)
    _patch(timer.WiredTimer, "will_limit_be_reached", _wrap_will_limit_be_reached)
    _reset_failure_singleton()


def uninstall() -> None:
    """Undo every patch (tests run several flows in one process)."""
    while _originals:
        owner, attr, original = _originals.pop()
        setattr(owner, attr, original)
    _stages.clear()
    _mqtt_connectors.clear()
    _remove_import_hook()


class _InstrumentOnImport(importlib.abc.MetaPathFinder):
    """Instruments wiredflow right after the flow (or anything it imports) imports it."""

    def find_spec(self, fullname: str, path: Any, target: ModuleType | None = None) -> Any:
        if fullname != "wiredflow":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_instrument(module: ModuleType) -> None:
            exec_module(module)
            sys.modules[fullname] = module
            _on_import()

        loader.exec_module = exec_then_instrument  # type: ignore[method-assign]
        return spec


_hook = _InstrumentOnImport()
_instrument_stages = True
_after_import: tuple[AfterImport, ...] = ()  # of the installation in force (sys.meta_path is per process)


def _on_import() -> None:
    if _instrument_stages:
        instrument()
    for after in _after_import:
        after()


def install_import_hook(instrument_stages: bool = True, after_import: Sequence[AfterImport] = ()) -> None:
    """Switch the adapter on when the flow imports wiredflow (now, if it already is).

    `after_import` runs then, in order, after the adapter's own patches (`instrument_stages`).
    """
    global _instrument_stages, _after_import
    _instrument_stages = instrument_stages
    _after_import = tuple(after_import)
    if "wiredflow" in sys.modules:
        _on_import()
        return
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)


def _remove_import_hook() -> None:
    global _after_import
    _after_import = ()
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)
