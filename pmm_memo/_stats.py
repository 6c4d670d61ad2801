"""Counters behind `cache_info()` and `get_cache_stats()`.

Plain integer attributes rather than locks: an increment is a few nanoseconds on the hit
path. Under heavy thread contention CPython can, rarely, lose an increment; counters are
for observing and tuning, never for correctness.
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import NamedTuple

# Upper edges of the nearest-neighbour similarity histogram (the last bucket is "≥ 0.99").
SIMILARITY_BUCKETS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)


class CacheInfo(NamedTuple):
    """What `decorated.cache_info()` returns (functools-style, with cache-specific extras)."""

    hits: int
    misses: int
    semantic_hits: int
    errors: int
    currsize: int | None
    corrupt: int = 0
    uncacheable: int = 0
    similarity_histogram: tuple[tuple[str, int], ...] = ()
    waited_hits: int = 0
    guard_rejections: int = 0  # semantic candidates a guard vetoed (see _guards)
    verify_rejections: int = 0  # candidates the verify= judge rejected or failed on


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0
    semantic_hits: int = 0
    errors: int = 0
    corrupt: int = 0
    uncacheable: int = 0
    waited_hits: int = 0  # results received from another process's computation
    guard_rejections: int = 0
    verify_rejections: int = 0
    similarity: list[int] = field(default_factory=lambda: [0] * (len(SIMILARITY_BUCKETS) + 1))

    def record_similarity(self, similarity: float) -> None:
        """Count `similarity` in the first bucket whose edge is above it (the last one:
        none is, NaN included). By bisection: every semantic lookup records one."""
        self.similarity[bisect_right(SIMILARITY_BUCKETS, similarity)] += 1

    def histogram(self) -> tuple[tuple[str, int], ...]:
        labels = [f"<{edge:g}" for edge in SIMILARITY_BUCKETS] + [f">={SIMILARITY_BUCKETS[-1]:g}"]
        return tuple(zip(labels, self.similarity, strict=True))

    def info(self, currsize: int | None) -> CacheInfo:
        return CacheInfo(
            self.hits,
            self.misses,
            self.semantic_hits,
            self.errors,
            currsize,
            self.corrupt,
            self.uncacheable,
            self.histogram(),
            self.waited_hits,
            self.guard_rejections,
            self.verify_rejections,
        )

    def reset(self) -> None:
        fresh = Counters()
        self.__dict__.update(fresh.__dict__)


# Every decorated function's counters with its tenant and function name, for exporters
# (OpenTelemetry). Weak, so a function that is garbage-collected drops out; written once
# per decoration, never on the call path.
_tracked: dict[int, tuple[weakref.ref[Counters], str, str]] = {}


def track(counters: Counters, tenant: str, function: str) -> None:
    _tracked[id(counters)] = (weakref.ref(counters), tenant, function)


def labels_of(counters: Counters) -> tuple[str, str] | None:
    """(tenant, function) of a decorated function's counters, or None for other counters."""
    found = _tracked.get(id(counters))
    if found is None or found[0]() is not counters:
        return None
    return found[1], found[2]


def tracked() -> list[tuple[Counters, str, str]]:
    """Live (counters, tenant, function) triples; forgets the collected ones."""
    out = []
    for ident, (ref, tenant, function) in list(_tracked.items()):
        counters = ref()
        if counters is None:
            _tracked.pop(ident, None)
        else:
            out.append((counters, tenant, function))
    return out
