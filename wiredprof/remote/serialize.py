"""What travels to host B, and how: cloudpickle plus two rules of ours.

1. By value or by reference. Code from `__main__` and from modules outside site-packages and
   the standard library (the user's project, a helper next to the flow file, wiredprof
   itself) is pickled by value, because B does not have it; third-party modules go by
   reference and must be installed on B.
2. Objects that stay on A. Locks, sockets, open files, database clients, wiredflow's storage
   stages (and whatever `keep_on_host_a` registers) never travel: they are pickled as a
   reference, and B gets a proxy whose method calls come back to A. Any other object that
   cannot be pickled (in an argument, a closure variable, a global) is kept on A the same
   way, the outermost one that fails (a storage object holding a lock stays whole); what can
   neither be pickled nor proxied (a generator, say) is an error naming it by its path.
"""

from __future__ import annotations

import collections
import dis
import functools
import inspect
import io
import itertools
import logging
import os
import pickle
import queue
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import types
from typing import Any, Callable, Iterator

import cloudpickle

from wiredprof.errors import PickleError

__all__ = [
    "LocalObjects",
    "keep_on_host_a",
    "stays_on_host_a",
    "ship_by_value",
    "register_project_modules",
    "dump_function",
    "dump_call",
    "dump_value",
    "load_value",
    "load_stream",
    "function_name",
]

log = logging.getLogger(__name__)

REF_TAG = "wiredprof.ref"
_WALK_LIMIT = 5000
_PLAIN_SCAN = 4096  # small pickles are scanned for persistent ids; a larger one goes to _Unpickler

_STAY_TYPES: set[type] = {
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
    threading.Semaphore,
    threading.BoundedSemaphore,
    threading.Thread,
    socket.socket,
    io.FileIO,
    io.BufferedReader,
    io.BufferedWriter,
    io.BufferedRandom,
    io.TextIOWrapper,
    sqlite3.Connection,
    sqlite3.Cursor,
    queue.Queue,
    subprocess.Popen,
}
# Classes from these modules hold connections or a pipeline's storage: they must act on A.
_STAY_MODULE_PREFIXES: list[str] = [
    "wiredflow.main.store_engines",
    "wiredflow.main.actions.stages.storage_stage",  # user subclasses of StageStorageInterface too
    "pymongo.",
    "redis.",
    "psycopg",
    "sqlalchemy.engine",
    "paho.mqtt.client",
]
_stay_cache: dict[type, bool] = {}
_SIMPLE_TYPES = frozenset(
    {int, float, str, bytes, bytearray, bool, type(None), tuple, list, dict, set, frozenset, complex}
)


def keep_on_host_a(cls_or_module_prefix: type | str) -> None:
    """Register a type (or a module prefix) whose instances always stay on A behind a proxy."""
    if isinstance(cls_or_module_prefix, str):
        _STAY_MODULE_PREFIXES.append(cls_or_module_prefix)
    else:
        _STAY_TYPES.add(cls_or_module_prefix)
    _stay_cache.clear()


def stays_on_host_a(obj: Any) -> bool:
    """True when `obj` is of a type that never leaves host A (its class or a base is registered)."""
    cls = type(obj)
    cached = _stay_cache.get(cls)
    if cached is None:
        modules = [getattr(base, "__module__", "") or "" for base in cls.__mro__]
        cached = any(issubclass(cls, t) for t in _STAY_TYPES) or any(
            module.startswith(prefix) for module in modules for prefix in _STAY_MODULE_PREFIXES
        )
        _stay_cache[cls] = cached
    return cached


class LocalObjects:
    """The objects of one connection that stayed on A, numbered for B's proxies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ref: dict[int, Any] = {}
        self._ref_by_id: dict[int, int] = {}
        self._sent: dict[int, int] = {}  # references pickled for B and not yet released by it
        self._refs = itertools.count(1)

    def describe(self, obj: Any, count: bool = True) -> tuple[str, int, str, list[str]]:
        """The persistent id B turns into a proxy: tag, number, type name, method names.

        `count=False` is for trial pickles that are never sent: no number is handed out.
        """
        cls = type(obj)
        methods = [
            name for name in dir(cls) if not name.startswith("__") and callable(getattr(cls, name, None))
        ]
        name = f"{cls.__module__}.{cls.__qualname__}"
        if not count:
            return (REF_TAG, 0, name, methods)
        with self._lock:
            ref = self._ref_by_id.get(id(obj))
            if ref is None:
                ref = next(self._refs)
                # Held strongly until B releases it, so id() stays unique and B's proxy valid.
                self._by_ref[ref] = obj
                self._ref_by_id[id(obj)] = ref
            self._sent[ref] = self._sent.get(ref, 0) + 1
        return (REF_TAG, ref, name, methods)

    def release(self, ref: int, received: int) -> None:
        """B dropped every proxy of `ref` it had, `received` of them: forget the object unless
        more references to it were sent meanwhile."""
        with self._lock:
            left = self._sent.get(ref, 0) - received
            if left > 0:
                self._sent[ref] = left
                return
            self._sent.pop(ref, None)
            obj = self._by_ref.pop(ref, None)
            if obj is not None:
                self._ref_by_id.pop(id(obj), None)

    def get(self, ref: int) -> Any:
        """The object behind proxy number `ref`."""
        with self._lock:
            return self._by_ref[ref]

    def __len__(self) -> int:
        return len(self._by_ref)


class _StaysOnA(pickle.PicklingError):
    """Raised while pickling an object that must stay on A and is not yet marked to."""


def _code_reduce_keeping_file(code: types.CodeType) -> Any:
    """cloudpickle's reducer for a code object, keeping its real file name.

    cloudpickle writes "<dynamic-code>" (for deterministic payloads); with the real name a
    traceback on B names the file and line, and A fills in the source line from its copy.
    """
    ctor, args = _CLOUDPICKLE_CODE_REDUCE(code)
    return ctor, tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)


_CLOUDPICKLE_CODE_REDUCE: Any = getattr(getattr(cloudpickle, "cloudpickle", None), "_code_reduce", None)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    if _CLOUDPICKLE_CODE_REDUCE is not None:
        dispatch_table = collections.ChainMap(
            {types.CodeType: _code_reduce_keeping_file}, cloudpickle.Pickler.dispatch_table
        )

    def __init__(self, file: io.BytesIO, objects: LocalObjects, marked: set[int], count: bool = True) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._objects = objects
        self._marked = marked
        self._count = count

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) in _SIMPLE_TYPES:
            return None
        if id(obj) in self._marked:
            return self._objects.describe(obj, self._count)
        if stays_on_host_a(obj):
            # Not marked yet: fail, so the walk below can keep the outermost holder on A
            # (a storage object holding a lock stays whole, not copied with a proxied lock).
            raise _StaysOnA(f"a {type(obj).__name__} stays on host A")
        return None


class _RecordingPickler(_Pickler):
    """Also notes the module of every function, class, module and instance type it pickles."""

    def __init__(self, file: io.BytesIO, objects: LocalObjects, marked: set[int], record: set[str]) -> None:
        super().__init__(file, objects, marked, count=False)
        self._record = record

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            self._record.add(obj.__name__)
        elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            self._record.add(getattr(obj, "__module__", None) or "")
            if isinstance(obj, types.FunctionType) and _travels_by_value(obj):
                self._record.update(f"import:{name}" for name in _imported_names(obj.__code__))
        else:
            self._record.add(type(obj).__module__)
        return super().reducer_override(obj)


def _travels_by_value(fn: types.FunctionType) -> bool:
    module = sys.modules.get(fn.__module__ or "")
    return module is None or ship_by_value(module)


def _imported_names(code: types.CodeType) -> set[str]:
    """Modules a code object imports in its body (`import x` inside a function), nested code included."""
    names: set[str] = set()
    level: Any = 0
    for instruction in dis.get_instructions(code):
        if instruction.opname == "LOAD_CONST":
            level = instruction.argval
        elif instruction.opname == "IMPORT_NAME" and not level:
            names.add(str(instruction.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _imported_names(const)
    return names


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, objects: LocalObjects) -> None:
        super().__init__(file)
        self._objects = objects

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 2 and pid[0] == REF_TAG:
            return self._objects.get(pid[1])
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


# -- by value or by reference ------------------------------------------------------------


def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(os.path.realpath(sysconfig.get_paths()[key]))
        except KeyError:
            pass
    for prefix in {sys.base_prefix, sys.prefix, sys.exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    return tuple(sorted(roots))


_ROOTS = _library_roots()
_decided: dict[str, bool] = {}
_scan_lock = threading.Lock()
_scanned_count = 0


_real_dirs: dict[str, str] = {}


def _real_path(path: str) -> str:
    """`os.path.realpath`, its directories resolved once: a module's siblings share them (a
    scan of hundreds of modules then costs a few hundred `lstat`s, not thousands)."""
    if os.path.islink(path):
        return os.path.realpath(path)
    head, tail = os.path.split(os.path.abspath(path))
    real = _real_dirs.get(head)
    if real is None:
        real = _real_dirs[head] = os.path.realpath(head)
    return os.path.join(real, tail)


def ship_by_value(module: types.ModuleType) -> bool:
    """True for modules B cannot be expected to have: the user's own code and wiredprof."""
    name = module.__name__
    if name == "__main__" or name.split(".")[0] == "wiredprof":
        return True
    path = getattr(module, "__file__", None)
    if not path:
        return False  # built-in, frozen or namespace package
    real = _real_path(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    if not real.endswith((".py", ".pyc")):
        return False  # a compiled extension cannot travel as source; B must have it
    return not any(real.startswith(root + os.sep) for root in _ROOTS)


def register_project_modules() -> None:
    """Register every by-value module imported so far with cloudpickle (cheap when nothing changed)."""
    global _scanned_count
    if len(sys.modules) == _scanned_count:
        return
    with _scan_lock:
        for name, module in list(sys.modules.items()):
            if name in _decided or not isinstance(module, types.ModuleType) or name == "__main__":
                continue
            by_value = ship_by_value(module)
            _decided[name] = by_value
            if by_value:
                try:
                    cloudpickle.register_pickle_by_value(module)
                except (ValueError, TypeError):
                    _decided[name] = False
        _scanned_count = len(sys.modules)


# -- dumping and loading -------------------------------------------------------------------


def _dump(
    obj: Any, objects: LocalObjects, marked: set[int], count: bool = True, record: set[str] | None = None
) -> memoryview:
    out = io.BytesIO()
    if record is None:
        _Pickler(out, objects, marked, count).dump(obj)
    else:
        _RecordingPickler(out, objects, marked, record).dump(obj)
    return out.getbuffer()


def _pickles(obj: Any, objects: LocalObjects, marked: set[int]) -> Exception | None:
    try:
        _dump(obj, objects, marked, count=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot travel"
        return exc
    return None


def load_value(data: bytes | bytearray | memoryview, objects: LocalObjects) -> Any:
    """Unpickle what B sent; proxies B hands back become the original objects again."""
    if type(data) is not memoryview and len(data) <= _PLAIN_SCAN and b"Q" not in data and b"P" not in data:
        return pickle.loads(data)  # no persistent-id opcode (BINPERSID, PERSID) in it: the C unpickler alone
    return _Unpickler(io.BytesIO(data), objects).load()


def load_stream(stream: Any, objects: LocalObjects) -> Any:
    """`load_value` from a file object (read/readinto/peek/readline), without buffering it whole."""
    return _Unpickler(stream, objects).load()


def function_name(fn: Any) -> str:
    """A readable name for a callable: module.qualname, or its type for callable objects."""
    if isinstance(fn, functools.partial):
        return f"partial({function_name(fn.func)})"
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None) or type(fn).__module__
    return f"{module}.{name}"


def _proxyable(obj: Any) -> bool:
    return not isinstance(
        obj,
        (
            type,
            types.ModuleType,
            types.FunctionType,
            types.GeneratorType,
            types.CoroutineType,
            types.AsyncGeneratorType,
            types.FrameType,
            types.CodeType,
            types.TracebackType,
        ),
    )


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for index, value in enumerate(obj):
            yield f"[{index}]", value


def _keep_unpicklable_on_a(
    obj: Any, path: str, objects: LocalObjects, marked: set[int], budget: list[int]
) -> None:
    """Mark the outermost objects under `obj` that cannot travel; containers and functions are opened."""
    budget[0] -= 1
    if budget[0] < 0 or _pickles(obj, objects, marked) is None:
        return
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        for suffix, child in _children(obj):
            _keep_unpicklable_on_a(child, path + suffix, objects, marked, budget)
        return
    if isinstance(obj, (types.FunctionType, functools.partial)):
        for label, part in _function_parts(obj):
            _keep_unpicklable_on_a(part, f"{label} of {path}" if path else label, objects, marked, budget)
        return
    if _proxyable(obj):
        log.info("%s (%s) cannot travel: it stays on host A behind a proxy", path, type(obj).__name__)
        marked.add(id(obj))
        return
    error = _pickles(obj, objects, marked)
    raise PickleError(
        f"{path} ({type(obj).__name__}) cannot be pickled and cannot stay on host A behind a proxy: {error}",
        path,
    )


def _argument_names(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return [(f"argument {name!r}", value) for name, value in bound.arguments.items()]
    except (TypeError, ValueError):
        return [(f"argument {i}", a) for i, a in enumerate(args)] + [
            (f"argument {k!r}", v) for k, v in kwargs.items()
        ]


def dump_value(value: Any, objects: LocalObjects, what: str = "value") -> memoryview:
    """Pickle `value`; parts that cannot travel stay on A behind proxies."""
    register_project_modules()
    marked: set[int] = set()
    try:
        return _dump(value, objects, marked)
    except Exception as first:  # noqa: BLE001
        _keep_unpicklable_on_a(value, what, objects, marked, [_WALK_LIMIT])
        try:
            return _dump(value, objects, marked)
        except Exception as exc:  # noqa: BLE001
            raise PickleError(f"cannot pickle {what}: {exc}") from first


def dump_call(
    fn: Callable[..., Any], fn_id: int, args: tuple[Any, ...], kwargs: dict[str, Any], objects: LocalObjects
) -> memoryview:
    """Pickle a call's (function id, args, kwargs); arguments that cannot travel stay on A behind proxies."""
    register_project_modules()
    marked: set[int] = set()
    try:
        return _dump((fn_id, args, kwargs), objects, marked)
    except Exception as first:  # noqa: BLE001
        budget = [_WALK_LIMIT]
        for label, value in _argument_names(fn, args, kwargs):
            _keep_unpicklable_on_a(value, f"{label} of {function_name(fn)}", objects, marked, budget)
        try:
            return _dump((fn_id, args, kwargs), objects, marked)
        except Exception as exc:  # noqa: BLE001
            raise PickleError(f"cannot pickle the arguments of {function_name(fn)}: {exc}") from first


def dump_function(fn: Callable[..., Any], objects: LocalObjects, record: set[str] | None = None) -> memoryview:
    """Pickle a callable to be kept on B; what it holds that cannot travel stays on A, or is named.

    With `record`, the names of the modules the pickle refers to are added to it (and, as
    `import:NAME`, the modules its functions import in their bodies); nothing is sent.
    """
    register_project_modules()
    marked: set[int] = set()
    try:
        return _dump(fn, objects, marked, record=record)
    except Exception as first:  # noqa: BLE001
        budget = [_WALK_LIMIT]
        try:
            for label, part in _function_parts(fn):
                _keep_unpicklable_on_a(part, label, objects, marked, budget)
        except PickleError as exc:
            raise PickleError(
                f"cannot ship {function_name(fn)} to the remote host: {exc}", exc.path
            ) from first
        try:
            return _dump(fn, objects, marked, record=record)
        except Exception as exc:  # noqa: BLE001
            raise PickleError(f"cannot ship {function_name(fn)} to the remote host: {exc}") from first


def _function_parts(fn: Any) -> Iterator[tuple[str, Any]]:
    """The values a shipped callable drags along, with the names a user knows them by."""
    if isinstance(fn, functools.partial):
        yield from _function_parts(fn.func)
        for i, a in enumerate(fn.args):
            yield f"partial argument {i}", a
        for k, v in fn.keywords.items():
            yield f"partial argument {k!r}", v
        return
    if isinstance(fn, types.MethodType):
        yield "bound instance", fn.__self__
        yield from _function_parts(fn.__func__)
        return
    if not isinstance(fn, types.FunctionType):
        for name, value in getattr(fn, "__dict__", {}).items():
            yield f"attribute {name!r} of {type(fn).__name__}", value
        return
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            yield f"closure variable {name!r}", cell.cell_contents
        except ValueError:
            continue
    for i, default in enumerate(fn.__defaults__ or ()):
        yield f"default value {i}", default
    for name, default in (fn.__kwdefaults__ or {}).items():
        yield f"default of {name!r}", default
    for name in sorted(_global_names(code)):
        if name in fn.__globals__:
            yield f"global {name!r}", fn.__globals__[name]


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names
