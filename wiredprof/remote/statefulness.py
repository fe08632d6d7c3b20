"""Does a callable keep state between calls? If so, once offloaded, that state lives on host B.

The executor ships each callable once per connection and keeps it alive on B, so a stage
that appends to a closure's list or bumps a module-level counter behaves as it does
locally, but A no longer sees those changes. `stateful_reasons` finds the usual ways a
function keeps state so `wiredprof offload` can say so before it happens.
"""

from __future__ import annotations

import dis
import functools
import types
from typing import Any, Callable

__all__ = ["stateful_reasons", "is_stateful"]

_IMMUTABLE = (
    int,
    float,
    complex,
    str,
    bytes,
    bool,
    type(None),
    frozenset,
    range,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
)


def _mutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_mutable(v) for v in value)
    return not isinstance(value, _IMMUTABLE)


def _stores(code: types.CodeType) -> tuple[set[str], set[str]]:
    """Names assigned with `nonlocal` (STORE_DEREF) and `global` (STORE_GLOBAL) in code and nested code."""
    derefs: set[str] = set()
    globals_: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname == "STORE_DEREF":
            derefs.add(str(instruction.argval))
        elif instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            globals_.add(str(instruction.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            inner_derefs, inner_globals = _stores(const)
            derefs |= inner_derefs
            globals_ |= inner_globals
    return derefs, globals_


def stateful_reasons(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Why `fn` may keep state between calls (empty when it looks stateless)."""
    reasons: list[str] = []
    if isinstance(fn, functools.partial):
        for i, arg in enumerate(fn.args):
            if _mutable(arg):
                reasons.append(f"partial argument {i} ({type(arg).__name__}) is mutable")
        for key, arg in fn.keywords.items():
            if _mutable(arg):
                reasons.append(f"partial argument {key!r} ({type(arg).__name__}) is mutable")
        return tuple(reasons) + stateful_reasons(fn.func)
    if isinstance(fn, types.MethodType):
        owner = fn.__self__
        if not isinstance(owner, type) and hasattr(owner, "__dict__"):
            reasons.append(f"bound to a {type(owner).__name__} instance, whose attributes it may change")
        fn = fn.__func__
    if not isinstance(fn, types.FunctionType):
        if hasattr(fn, "__dict__"):
            reasons.append(f"a callable {type(fn).__name__} object, whose attributes it may change")
        return tuple(reasons)
    code = fn.__code__
    derefs, globals_ = _stores(code)
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        if name in derefs:
            reasons.append(f"assigns the closure variable {name!r} (nonlocal)")
            continue
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if _mutable(value):
            reasons.append(f"closure variable {name!r} ({type(value).__name__}) is mutable")
    for name in sorted(globals_):
        reasons.append(f"assigns the module-level variable {name!r} (global)")
    for i, default in enumerate(fn.__defaults__ or ()):
        if isinstance(default, (list, dict, set, bytearray)):
            reasons.append(f"default value {i} ({type(default).__name__}) is mutable")
    return tuple(reasons)


def is_stateful(fn: Callable[..., Any]) -> bool:
    """True when `stateful_reasons(fn)` finds anything."""
    return bool(stateful_reasons(fn))
