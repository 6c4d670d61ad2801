"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f} us"


def row(name: str, samples: list[float], extra: str = "") -> str:
    return (
        f"  {name:<44} median {fmt_us(statistics.median(samples))}   "
        f"p99 {fmt_us(p(samples, 0.99))}  {extra}"
    )


@contextlib.contextmanager
def redis_server(url: str | None, search: bool = True) -> Iterator[str]:
    """The given URL, or a Valkey (+RediSearch) started from the PyPI packages."""
    if url:
        yield url
        return
    import tempfile

    from tests.support.servers import ValkeyServer

    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyServer(search=search, log_dir=Path(tmp)).start()
        try:
            yield server.url
        finally:
            server.stop()
