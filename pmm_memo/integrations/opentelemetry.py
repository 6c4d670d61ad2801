"""OpenTelemetry metrics for every decorated function (and the OpenAI/LangChain caches).

    from pmm_memo.integrations.opentelemetry import enable_metrics
    enable_metrics()                  # the global MeterProvider, or enable_metrics(provider)

Instruments (meter `pmm_memo`), each with the attributes `pmm_memo.tenant` and
`code.function.name` (the decorated function's module-qualified name) — never a user id,
an argument or a text:

| name | kind | unit |
|---|---|---|
| pmm_memo.cache.hits | observable counter | {hit} |
| pmm_memo.cache.semantic_hits | observable counter | {hit} |
| pmm_memo.cache.misses | observable counter | {miss} |
| pmm_memo.cache.errors | observable counter | {error} |
| pmm_memo.cache.uncacheable | observable counter | {result} |
| pmm_memo.cache.lookup.duration | histogram (+ `pmm_memo.lookup`: exact / semantic) | s |
| pmm_memo.semantic.similarity | histogram: the nearest neighbour's cosine similarity | 1 |

Why this shape: the counters are *observed* from the counters `cache_info()` already
keeps, when the reader collects, so the call path does no metrics work at all; the two
histograms need one measurement per lookup, so `enable_metrics()` swaps timed versions
of the cache's lookup methods in and `disable_metrics()` puts the originals back. Not
enabled, pmm_memo runs exactly the code it runs without this module (zero cost).
`cache_clear()` resets a function's counters; exporters see that as a counter reset.
Needs the `opentelemetry` extra (`opentelemetry-api`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .. import _stats
from .._cache import Cache

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation

__all__ = ["disable_metrics", "enable_metrics"]

TENANT = "pmm_memo.tenant"
FUNCTION = "code.function.name"  # OpenTelemetry's semantic-convention name
LOOKUP = "pmm_memo.lookup"

_COUNTERS = (
    ("hits", "{hit}", "Exact cache hits."),
    ("semantic_hits", "{hit}", "Semantic cache hits (a near-duplicate's stored result)."),
    ("misses", "{miss}", "Calls that ran the function."),
    ("errors", "{error}", "Cache failures the call fell back from (fail-open)."),
    ("uncacheable", "{result}", "Results returned but not stored (codec or size)."),
)
_TIMED = ("read", "aread", "knn", "aknn")

_lock = threading.Lock()
_state: _Enabled | None = None


class _Enabled:
    def __init__(self, provider: MeterProvider | None) -> None:
        from opentelemetry import metrics

        from .. import __version__

        meter = metrics.get_meter("pmm_memo", __version__, meter_provider=provider)
        self.provider = provider
        self.active = True
        for name, unit, description in _COUNTERS:
            meter.create_observable_counter(
                f"pmm_memo.cache.{name}",
                callbacks=[self._observer(name)],
                unit=unit,
                description=description,
            )
        self.duration: Histogram = meter.create_histogram(
            "pmm_memo.cache.lookup.duration",
            unit="s",
            description="Time of a cache lookup (exact read or semantic search).",
        )
        self.similarity: Histogram = meter.create_histogram(
            "pmm_memo.semantic.similarity",
            unit="1",
            description="Cosine similarity of the nearest neighbour found by a semantic lookup.",
        )
        self.originals = {name: getattr(Cache, name) for name in _TIMED}

    def _observer(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        from opentelemetry.metrics import Observation

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if not self.active:
                return []
            # One point per (tenant, function): a function decorated twice (or instrument()
            # called again) adds up instead of reporting two values for one series.
            totals: dict[tuple[str, str], int] = {}
            for counters, tenant, function in _stats.tracked():
                key = (tenant, function)
                totals[key] = totals.get(key, 0) + int(getattr(counters, field))
            return [Observation(v, {TENANT: t, FUNCTION: f}) for (t, f), v in totals.items()]

        return observe

    def record(self, counters: Any, lookup: str, seconds: float, neighbours: Any) -> None:
        labels = _stats.labels_of(counters)
        if labels is None:  # the manager's own operations: not a function's lookup
            return
        attributes = {TENANT: labels[0], FUNCTION: labels[1]}
        self.duration.record(seconds, {**attributes, LOOKUP: lookup})
        if neighbours:
            self.similarity.record(float(neighbours[0].similarity), attributes)


def _timed(name: str, original: Callable[..., Any], state: _Enabled) -> Callable[..., Any]:
    lookup = "exact" if name in ("read", "aread") else "semantic"

    if name.startswith("a"):

        async def atimed(self: Cache, query: Any, *rest: Any) -> Any:
            start = time.perf_counter()
            result = await original(self, query, *rest)
            state.record(rest[-1], lookup, time.perf_counter() - start, _found(name, result))
            return result

        return atimed

    def timed(self: Cache, query: Any, *rest: Any) -> Any:
        start = time.perf_counter()
        result = original(self, query, *rest)
        state.record(rest[-1], lookup, time.perf_counter() - start, _found(name, result))
        return result

    return timed


def _found(name: str, result: Any) -> Any:
    return result if name.endswith("knn") else None


def enable_metrics(meter_provider: MeterProvider | None = None) -> None:
    """Report pmm_memo's metrics through OpenTelemetry (idempotent; a new provider
    replaces the previous one)."""
    global _state
    with _lock:
        if _state is not None:
            if _state.provider is meter_provider:
                return
            _disable()
        state = _Enabled(meter_provider)
        for name in _TIMED:
            setattr(Cache, name, _timed(name, state.originals[name], state))
        _state = state


def disable_metrics() -> None:
    """Stop reporting; the cache's own methods are restored (no cost left behind)."""
    with _lock:
        _disable()


def _disable() -> None:
    global _state
    if _state is None:
        return
    _state.active = False  # observable instruments cannot be removed from a meter
    for name, original in _state.originals.items():
        setattr(Cache, name, original)
    _state = None
