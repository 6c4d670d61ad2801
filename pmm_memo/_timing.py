"""Timing helpers shared by `pmm-memo bench` and the scripts in benchmarks/."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


def per_call_samples(fn: Callable[[], Any], calls: int, batch: int) -> list[float]:
    """Seconds per call, one sample per batch (batching hides the timer's own cost)."""
    samples = []
    for _ in range(calls // batch):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch / 1e9)
    return samples


async def aper_call_samples(
    fn: Callable[[], Awaitable[Any]], calls: int, batch: int
) -> list[float]:
    samples = []
    for _ in range(calls // batch):
        start = time.perf_counter_ns()
        for _ in range(batch):
            await fn()
        samples.append((time.perf_counter_ns() - start) / batch / 1e9)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f} us"


def row(name: str, samples: list[float], extra: str = "") -> str:
    return (
        f"  {name:<44} median {fmt_us(statistics.median(samples))}   "
        f"p99 {fmt_us(percentile(samples, 0.99))}  {extra}"
    )


def ratio_of_rounds(ours: list[list[float]], base: list[list[float]]) -> float:
    """Median over rounds of (median ours / median baseline) in that round."""
    return statistics.median(
        statistics.median(a) / statistics.median(b) for a, b in zip(ours, base, strict=True)
    )
