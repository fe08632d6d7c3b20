"""Backoff and circuit breaker: the schedule on a fake clock, then a real listener going away."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from wiredprof.errors import CircuitOpenError, ConnectError
from wiredprof.remote import HostSpec, connect
from wiredprof.remote.breaker import Breaker
from wiredprof.testing.localsshd import local_sshd


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_with_jitter_then_the_circuit_opens_for_the_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(base_s=1.0, cap_s=8.0, threshold=4, cooldown_s=30.0, clock=clock, rng=random.Random(1))
    waits = []
    for _ in range(3):
        breaker.failure()
        waits.append(breaker.wait_s())
        assert not breaker.is_open
    for n, wait in enumerate(waits):
        assert 0.5 * 2**n <= wait <= 1.5 * 2**n  # 1, 2, 4 s, each +-50 %
    breaker.failure()
    assert breaker.is_open and 15.0 <= breaker.wait_s() <= 45.0 and breaker.opened == 1
    clock.now += 46.0
    assert not breaker.is_open and breaker.wait_s() == 0  # half-open: one try
    breaker.success()
    assert breaker.failures == 0 and breaker.wait_s() == 0


def test_many_callers_do_not_reconnect_in_step() -> None:
    clock = Clock()
    delays = set()
    for seed in range(20):
        b = Breaker(base_s=1.0, clock=clock, rng=random.Random(seed))
        b.failure()
        delays.add(round(b.wait_s(), 3))
    assert len(delays) > 10


@pytest.mark.ssh
@pytest.mark.timeout(90)
def test_listener_down_then_back(python_b: str, tmp_path: Any) -> None:
    with local_sshd() as server:
        spec = HostSpec.direct(
            server.address, port=server.port, user=server.user, identity=server.identity,
            known_hosts=server.known_hosts, python=python_b, name="B", allow_agent=False,
        ).with_(ssh_dir=tmp_path, system_known_hosts=(), connect_timeout_s=3.0)
        with connect(spec) as b:
            b.breaker.base_s, b.breaker.cooldown_s = 0.05, 1.0
            assert b.call(len, "abc") == 3
            server.stop_listener()
            b.session().transport.close()  # the open connection drops too
            errors: list[type[BaseException]] = []
            started = time.monotonic()
            for _ in range(30):
                try:
                    b.call(len, "x")
                except ConnectError as exc:
                    errors.append(type(exc))
            # A few real connect attempts (refused), then the breaker answers without trying.
            assert errors.count(ConnectError) < b.breaker.threshold
            assert errors.count(CircuitOpenError) >= 30 - b.breaker.threshold
            assert time.monotonic() - started < 10
            server.start_listener()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    assert b.call(len, "back") == 4
                    break
                except CircuitOpenError:
                    time.sleep(0.2)
            else:
                pytest.fail("never reconnected after the listener came back")
            assert b.breaker.failures == 0
