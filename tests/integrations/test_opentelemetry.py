"""OpenTelemetry metrics through the SDK's in-memory reader, on both backends."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from pmm_memo import Cache, CacheConfig, cached, semantic_lookup
from pmm_memo._cache import Cache as CacheClass
from pmm_memo.integrations.opentelemetry import disable_metrics, enable_metrics
from tests.conftest import run

SECRET_USER = "alice-7f3a"
SECRET_TEXT = "my password is hunter2"


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    gc.collect()  # functions decorated by earlier tests drop out of the observed series
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    enable_metrics(provider)
    yield reader
    disable_metrics()
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    if data is None:  # nothing was observed or recorded
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def value(pts: dict[str, list[Any]], name: str, function: str, tenant: str) -> Any:
    found = [
        p
        for p in pts.get(name, [])
        if p.attributes["code.function.name"].endswith(function)
        and p.attributes["pmm_memo.tenant"] == tenant
    ]
    assert len(found) == 1, (name, function, pts.get(name))
    return found[0]


def test_counters_and_histograms(cache: Cache, reader: InMemoryMetricReader) -> None:
    # Tenants of this test only: functions of other tests may still be alive (observed).
    llm, db = f"otel_llm_{cache.backend.name}", f"otel_db_{cache.backend.name}"

    @semantic_lookup(0.9, tenant=llm, cache=cache)
    def ask(prompt: str, user_id: str | None = None) -> str:
        return prompt.upper()

    @cached(tenant=db, cache=cache)
    async def query(n: int) -> int:
        return n

    assert ask("How do I reset my password?", user_id=SECRET_USER)
    assert ask("How do I reset my password?", user_id=SECRET_USER)  # exact hit
    assert ask("how do i reset my password", user_id=SECRET_USER)  # semantic hit
    assert ask(SECRET_TEXT, user_id=SECRET_USER)
    assert run(query(1)) == run(query(1)) == 1
    pts = points(reader)
    assert value(pts, "pmm_memo.cache.hits", ".ask", llm).value == 1
    assert value(pts, "pmm_memo.cache.semantic_hits", ".ask", llm).value == 1
    assert value(pts, "pmm_memo.cache.misses", ".ask", llm).value == 2
    assert value(pts, "pmm_memo.cache.errors", ".ask", llm).value == 0
    assert value(pts, "pmm_memo.cache.hits", ".query", db).value == 1

    durations = [
        p
        for p in pts["pmm_memo.cache.lookup.duration"]
        if p.attributes["code.function.name"].endswith(".ask")
        and p.attributes["pmm_memo.tenant"] == llm
    ]
    by_kind = {p.attributes["pmm_memo.lookup"]: p for p in durations}
    # An llm tenant takes the cross-process lock on Redis, and the lock's winner reads
    # the entry once more before calling (see _distributed): one more read per miss.
    reads = 4 + (2 if cache.supports_locks else 0)
    assert by_kind["exact"].count == reads and by_kind["semantic"].count == 3
    assert all(p.sum >= 0 for p in durations)
    sim = value(pts, "pmm_memo.semantic.similarity", ".ask", llm)
    assert sim.count == 2 and sim.max == pytest.approx(1.0, abs=1e-4)  # first lookup: empty
    # Attributes never carry a user id, an argument or a text.
    for series in pts.values():
        for p in series:
            assert set(p.attributes) <= {"pmm_memo.tenant", "code.function.name", "pmm_memo.lookup"}
            flat = " ".join(map(str, p.attributes.values()))
            assert SECRET_USER not in flat and "hunter2" not in flat


def test_errors_and_uncacheable(redis_url: str, reader: InMemoryMetricReader) -> None:
    dead = Cache(CacheConfig(redis_url="redis://127.0.0.1:1/0"))
    live = Cache(CacheConfig(redis_url=redis_url))

    @cached(tenant="t_otel_dead", cache=dead)
    def f(n: int) -> int:
        return n

    @cached(tenant="t_otel_live", cache=live)
    def g(n: int) -> object:
        return object()  # the safe codec cannot store it

    assert f(1) == 1 and g(1) is not None
    pts = points(reader)
    assert value(pts, "pmm_memo.cache.errors", ".f", "t_otel_dead").value >= 1
    assert value(pts, "pmm_memo.cache.uncacheable", ".g", "t_otel_live").value == 1
    dead.close()
    live.close()


def test_disabled_costs_nothing() -> None:
    originals = {n: CacheClass.__dict__[n] for n in ("read", "aread", "knn", "aknn")}
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    enable_metrics(provider)
    assert CacheClass.__dict__["read"] is not originals["read"]
    enable_metrics(provider)  # idempotent
    disable_metrics()
    assert {n: CacheClass.__dict__[n] for n in originals} == originals
    assert not any(
        p.value for series in points(reader).values() for p in series if hasattr(p, "value")
    )
    provider.shutdown()
    # Not enabled, pmm_memo never imports OpenTelemetry.
    code = (
        "import sys; from pmm_memo import cached\n"
        "f = cached(lambda x: x); f(1); f(1)\n"
        "print('opentelemetry' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
