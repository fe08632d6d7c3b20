"""The CPU work of the samples' core logic: deterministic pure Python, calibrated per machine.

`checksum_work(seed, blocks)` runs `blocks` x `BLOCK_ITERATIONS` steps of a linear
congruential generator folded into a 48-bit checksum. The result depends only on
(seed, blocks), so a stage's output computed here and on another host can be compared.
`calibrate_blocks(cpu_seconds)` times a few blocks on this machine (thread CPU time,
best of three) and returns how many blocks take about `cpu_seconds` of CPU on an idle core.

This module is stdlib-only and holds no state at module level, so functions that use it
pickle by value with cloudpickle (`cloudpickle.register_pickle_by_value(samples._workload)`)
and run on a host where `samples` is not importable.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BLOCK_ITERATIONS",
    "Calibration",
    "calibrate_blocks",
    "checksum_work",
    "mix_block",
    "stable_seed",
]

BLOCK_ITERATIONS = 10_000
_MASK48 = (1 << 48) - 1


def mix_block(acc: int, state: int, block: int) -> tuple[int, int]:
    """One block of work: `BLOCK_ITERATIONS` generator steps folded into `acc`."""
    x = state
    for i in range(BLOCK_ITERATIONS):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        acc = (acc * 31 + (x ^ (i + block))) & _MASK48
    return acc, x


def checksum_work(seed: int, blocks: int) -> int:
    """Run `blocks` blocks of pure-Python work from `seed`; return the 48-bit checksum."""
    acc = seed & _MASK48
    state = (seed ^ 0x5DEECE66D) & 0x7FFFFFFF
    for block in range(blocks):
        acc, state = mix_block(acc, state, block)
    return acc


def stable_seed(value: Any) -> int:
    """A seed that depends only on `value`'s content (same on every host and run)."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class Calibration:
    """How much work `cpu_seconds` of CPU is on this machine."""

    cpu_seconds: float
    blocks: int
    seconds_per_block: float

    @property
    def predicted_seconds(self) -> float:
        """CPU seconds `blocks` blocks should take on an idle core of this machine."""
        return self.blocks * self.seconds_per_block


def calibrate_blocks(cpu_seconds: float, probe_cpu_seconds: float = 0.05, repeats: int = 3) -> Calibration:
    """Size `checksum_work` to about `cpu_seconds` of CPU on this machine.

    Times runs of at least `probe_cpu_seconds` of thread CPU, `repeats` times, and keeps
    the fastest (the least disturbed by other processes); at least one block is returned.
    """
    best = float("inf")
    for attempt in range(repeats):
        blocks = 0
        start = time.thread_time()
        elapsed = 0.0
        acc, state = attempt, 1
        while elapsed < probe_cpu_seconds:
            acc, state = mix_block(acc, state, blocks)
            blocks += 1
            elapsed = time.thread_time() - start
        best = min(best, elapsed / blocks)
    return Calibration(cpu_seconds, max(1, round(cpu_seconds / best)), best)
