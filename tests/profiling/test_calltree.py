"""Which calls the call-tree sampler takes: a stage's 2nd call, every `every`-th, within a budget."""
from __future__ import annotations

from wiredprof.profiling.accumulators import StageAccumulator
from wiredprof.profiling.calltree import RETRY_AFTER, CallTreeSampler


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def stage(mean_s: float, calls: int = 1) -> StageAccumulator:
    acc = StageAccumulator("p", "s")
    acc.base.calls, acc.base.total = calls, mean_s * calls
    return acc


def test_the_2nd_call_then_every_25th_of_a_long_enough_stage() -> None:
    sampler = CallTreeSampler(clock=Clock())
    slow, fast = stage(0.01), stage(0.0001)
    assert not sampler.wants(fast, 2) and fast.next_check == 25
    assert sampler.wants(slow, 2) and slow.next_check == 25
    slow.sampled = 1
    assert sampler.wants(slow, 25) and slow.next_check == 50
    slow.sampled = 3
    assert not sampler.wants(slow, 50) and slow.next_check > 10**9  # max_per_stage reached


def test_at_most_two_sampled_calls_at_once_the_others_ask_again_soon() -> None:
    sampler = CallTreeSampler(clock=Clock())
    c = stage(0.01)
    pa, pb = sampler.start(), sampler.start()
    try:
        assert not sampler.wants(c, 2) and c.next_check == 2 + RETRY_AFTER
    finally:
        sampler.cancel(pa)
        sampler.cancel(pb)
    assert sampler.wants(c, 2 + RETRY_AFTER)


def test_sampled_calls_spend_at_most_a_share_of_the_run() -> None:
    clock = Clock()
    sampler = CallTreeSampler(budget=0.01, grace_s=0.1, clock=clock)
    acc = stage(0.01)
    assert sampler.wants(acc, 2)
    sampler.spent_cpu_s = 0.5  # a long CPU-bound call was sampled
    assert not sampler.wants(stage(0.01), 2)
    clock.t = 40.0  # 0.1 s + 1 % of 40 s = 0.5 s: allowed again
    assert sampler.wants(stage(0.01), 2)
    assert sampler.skipped == 1
