"""Which callables keep state between calls (and would keep it on host B once offloaded)."""

from __future__ import annotations

import functools

from wiredprof.remote.statefulness import is_stateful, stateful_reasons

TOTAL = 0


def pure(x: int) -> int:
    return x + 1


def counts(x: int) -> int:
    global TOTAL
    TOTAL += x
    return TOTAL


def test_pure_functions_are_stateless() -> None:
    factor = 3
    assert stateful_reasons(pure) == ()
    assert not is_stateful(lambda x: x * factor)
    assert not is_stateful(functools.partial(pure, 1))


def test_closures_globals_and_objects_are_stateful() -> None:
    seen: list[int] = []
    count = 0

    def remember(x: int) -> None:
        seen.append(x)

    def bump() -> int:
        nonlocal count
        count += 1
        return count

    class Stage:
        def __init__(self) -> None:
            self.n = 0

        def __call__(self) -> None:
            self.n += 1

        def run(self) -> None:
            self.n += 1

    assert stateful_reasons(remember) == ("closure variable 'seen' (list) is mutable",)
    assert stateful_reasons(bump) == ("assigns the closure variable 'count' (nonlocal)",)
    assert stateful_reasons(counts) == ("assigns the module-level variable 'TOTAL' (global)",)
    assert "bound to a Stage instance" in stateful_reasons(Stage().run)[0]
    assert "callable Stage object" in stateful_reasons(Stage())[0]
    assert is_stateful(functools.partial(pure, []))
