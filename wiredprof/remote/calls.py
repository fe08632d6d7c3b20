"""The conveniences every executor offers on top of its `submit_call` (SSH and Dask alike)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, TypeVar

__all__ = ["CallConveniences"]

T = TypeVar("T")


class CallConveniences:
    """`submit`, `call` and `call_with_timeout`, built on the subclass's `submit_call`."""

    @property
    def host(self) -> str:
        """The host's name."""
        raise NotImplementedError

    def submit_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Future[T]:
        raise NotImplementedError

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn(*args, **kwargs)` on the host; the executor's `call_timeout` applies."""
        return self.submit_call(fn, args, kwargs)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the host and return its result (or raise its exception)."""
        return self.submit(fn, *args, **kwargs).result()

    def call_with_timeout(self, timeout: float, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`call` that raises `CallTimeoutError` when the host takes longer than `timeout` seconds."""
        return self.submit_call(fn, args, kwargs, timeout=timeout).result()
