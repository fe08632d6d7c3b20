"""When to try a host again after link failures: exponential backoff with jitter, then a breaker.

After each consecutive failure the next connect attempt waits `base * 2**(n-1)` seconds
(capped, with +-50 % jitter so many callers do not reconnect in step). After `threshold`
consecutive failures the circuit opens: calls fail at once, without a connect attempt,
for `cooldown_s`; then one attempt is let through (half-open), and a success closes it.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

__all__ = ["Breaker"]


class Breaker:
    """Consecutive link failures of one host, and whether a connect may be tried now."""

    def __init__(
        self,
        base_s: float = 0.2,
        cap_s: float = 10.0,
        threshold: int = 3,
        cooldown_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.rng = rng or random.Random()
        self.failures = 0
        self.opened = 0  # how many times the circuit opened
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True while calls skip the host."""
        with self._lock:
            return self.failures >= self.threshold and self.clock() < self._next_try

    def wait_s(self) -> float:
        """Seconds until a connect may be tried (0: now)."""
        with self._lock:
            return max(0.0, self._next_try - self.clock())

    def failure(self) -> None:
        """Count one more link failure in a row; schedule the next attempt."""
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                if self.failures == self.threshold:
                    self.opened += 1
                delay = self.cooldown_s
            else:
                delay = min(self.cap_s, self.base_s * 2 ** (self.failures - 1))
            self._next_try = self.clock() + delay * self.rng.uniform(0.5, 1.5)

    def success(self) -> None:
        """A connect or call worked: the host is back."""
        with self._lock:
            self.failures = 0
            self._next_try = 0.0
