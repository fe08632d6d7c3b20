"""Who wants to know about proxy calls B makes back to A (a list, importable at no cost).

`wiredprof.profiling.callbacks` registers here to measure an offloaded stage's call-backs
with the bytes that really crossed; `wiredprof.remote.session` calls every observer once per
answered proxy call. Kept apart so that registering does not import the SSH stack.
"""
from __future__ import annotations

from typing import Callable

__all__ = ["proxy_observers"]

# (bytes in + bytes out, seconds unpickling the request, seconds pickling the answer)
proxy_observers: list[Callable[[int, float, float], None]] = []
