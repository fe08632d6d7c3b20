"""What goes by value, what by reference, what stays on A (no network)."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from wiredprof.errors import PickleError
from wiredprof.remote.serialize import (
    LocalObjects,
    dump_call,
    dump_function,
    dump_value,
    keep_on_host_a,
    load_value,
    ship_by_value,
    stays_on_host_a,
)


def test_by_value_for_project_and_wiredprof_by_reference_for_libraries() -> None:
    import cloudpickle

    import tests.remote.test_serialize as this
    import wiredprof.remote.probe as probe

    assert ship_by_value(this) and ship_by_value(probe)
    assert not ship_by_value(json) and not ship_by_value(cloudpickle) and not ship_by_value(threading)


def test_stay_on_a_types() -> None:
    class Client:
        pass

    assert stays_on_host_a(threading.Lock()) and not stays_on_host_a(Client())
    keep_on_host_a(Client)
    assert stays_on_host_a(Client())


def test_outermost_holder_of_a_lock_stays_whole() -> None:
    class Storage:
        def __init__(self) -> None:
            self.guard = threading.Lock()

        def save(self) -> None: ...

    objects = LocalObjects()
    storage = Storage()
    data = dump_call(print, 1, ({"db": storage, "n": 3},), {}, objects)
    assert len(objects) == 1  # the Storage, not its lock
    # On A, the persistent id resolves back to the very object.
    fn_id, args, kwargs = load_value(data, objects)
    assert args[0]["db"] is storage and args[0]["n"] == 3
    # Plain pickle cannot load it: the Storage travels as a reference, not as a copy.
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)


def test_generator_closure_is_named_and_generator_argument_too() -> None:
    gen = (i for i in range(2))

    def stage() -> int:
        return next(gen)

    with pytest.raises(PickleError, match="closure variable 'gen' \\(generator\\)"):
        dump_function(stage, LocalObjects())
    with pytest.raises(PickleError, match=r"argument 'x' of .*\[0\] \(generator\)"):
        dump_call(lambda x: x, 1, ([gen],), {}, LocalObjects())


def test_dump_value_round_trip() -> None:
    objects = LocalObjects()
    assert load_value(dump_value({"a": [1, 2]}, objects), objects) == {"a": [1, 2]}
