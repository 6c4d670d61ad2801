"""CacheManager: the seed's operations on every backend."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from pmm_memo import Cache, CacheManager, ConfigError, EmbeddingError, cached
from tests.conftest import make_cache, url_for


def vec(*xs: float) -> np.ndarray:
    v = np.zeros(64, np.float32)
    v[: len(xs)] = xs
    return v


def test_put_get_round_trip(cache: Cache) -> None:
    m = CacheManager(cache=cache)
    key = m.put_cache("pmm_bot", "user123", "greeting", "Hello!", embedding=vec(1, 2), ttl=60)
    assert key.startswith("cache:pmm_bot:") and len(key.split(":")[-1]) == 32
    got = m.get_cache("pmm_bot", "greeting")
    assert got is not None
    assert (got["text"], got["user"], got["key"]) == ("Hello!", "user123", key)
    assert got["embedding"].shape == (64,)
    assert abs(float(np.linalg.norm(got["embedding"])) - 1) < 1e-3
    assert 0 < got["ttl_ms"] <= 60_000
    assert m.get_cache("pmm_bot", key) is not None  # the full key works too
    assert m.get_cache("pmm_db", "greeting") is None  # another tenant never sees it
    assert m.get_cache("pmm_bot", "missing") is None


def test_knn_search_similarity_and_user_filter(cache: Cache) -> None:
    m = CacheManager(cache=cache)
    m.put_cache("t", "alice", "a", "A", embedding=vec(1, 0))
    m.put_cache("t", "bob", "b", "B", embedding=vec(0.9, 0.1))
    m.put_cache("t", "Alice", "c", "C", embedding=vec(1, 0))
    m.put_cache("other", "alice", "d", "D", embedding=vec(1, 0))
    hits = m.knn_search("t", vec(1, 0), k=10)
    assert [h["text"] for h in hits][:2] in (["A", "C"], ["C", "A"])
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert hits[-1]["text"] == "B" and hits[-1]["similarity"] < 1
    assert [h["text"] for h in m.knn_search("t", vec(1, 0), k=10, user="alice")] == ["A"]
    assert [h["text"] for h in m.knn_search("t", vec(1, 0), k=10, user="Alice")] == ["C"]
    assert len(m.knn_search("t", vec(1, 0), k=1)) == 1


def test_bad_vectors_are_rejected(cache: Cache) -> None:
    m = CacheManager(cache=cache)
    with pytest.raises(EmbeddingError, match="expected \\(1, 64\\)"):
        m.put_cache("t", None, "k", "x", embedding=np.ones(3))
    with pytest.raises(EmbeddingError, match="NaN"):
        m.knn_search("t", np.full(64, np.nan))
    with pytest.raises(ConfigError):
        m.put_cache("", None, "k", "x")
    with pytest.raises(ConfigError):
        m.knn_search("t", vec(1), k=0)


def test_a_key_that_is_not_a_str_is_named(memory_cache: Cache) -> None:
    """An int or None key raised AttributeError ('int' object has no attribute
    'startswith') from inside the manager."""
    m = CacheManager(cache=memory_cache)
    for key in (123, None, b"k"):
        with pytest.raises(ConfigError, match="key must be a str, got"):
            m.put_cache("t", None, key, "x")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="key must be a str, got"):
            m.get_cache("t", key)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="key must be a str, got"):
            m.report_wrong_hit("t", key, 0.5)  # type: ignore[arg-type]


def test_clear_tenant_touches_only_that_tenant(cache: Cache) -> None:
    m = CacheManager(cache=cache)
    tenants = ["a", "a*", "a:b", "[a]", "a?", "b"]
    for t in tenants:
        for i in range(3):
            m.put_cache(t, None, f"k{i}", f"{t}-{i}")
    assert m.clear_tenant_cache("a") == 3
    for t in tenants[1:]:
        assert m.get_cache(t, "k0") is not None, t
    assert m.clear_tenant_cache("a*") == 3
    assert m.clear_tenant_cache("[a]") == 3
    assert m.get_cache("a:b", "k1") is not None
    assert m.clear_tenant_cache("a:b") == 3
    assert m.get_cache("a?", "k1") is not None and m.get_cache("b", "k1") is not None


def test_clear_tenant_in_batches(backend_kind: str, request: pytest.FixtureRequest) -> None:
    url = url_for(backend_kind, request)
    m = CacheManager(cache=make_cache(backend_kind, url, batch_size=7))
    for i in range(50):
        m.put_cache("bulk", None, f"k{i}", "x")
    assert m.clear_tenant_cache("bulk") == 50
    assert m.get_cache_stats("bulk")["tenants"]["bulk"]["entries"] == 0


def test_health_check(cache: Cache) -> None:
    report = CacheManager(cache=cache).health_check()
    assert report["healthy"] is True
    assert report["backend"] == cache.backend.name
    assert report["redis_connected"] is (cache.backend.name == "redis")
    assert report["search_available"] is True
    assert isinstance(report["latency_ms"], float)


def test_health_check_on_plain_valkey_and_dead_server(plain_url: str) -> None:
    report = CacheManager(make_cache("redis", plain_url).config).health_check()
    assert report["redis_connected"] is True and report["search_available"] is False
    dead = make_cache("redis", "redis://:hunter2@127.0.0.1:1/0")
    report = CacheManager(cache=dead).health_check()
    assert report["redis_connected"] is False and report["healthy"] is False
    assert "hunter2" not in str(report) and "***" in report["url"]


def test_stats_are_shared_between_caches(cache: Cache, request: pytest.FixtureRequest) -> None:
    # A tenant of its own: counters another test's cache flushes late (its background
    # flush after this test's server flush) never land in this one's row.
    tenant = f"pmm_llm_{uuid.uuid4().hex[:8]}"

    @cached(tenant=tenant, cache=cache)
    def f(x: int) -> int:
        return x

    f(1)
    f(1)
    f(2)
    stats = CacheManager(cache=cache).get_cache_stats(tenant)
    row = stats["tenants"][tenant]
    assert (row["entries"], row["hits"], row["misses"]) == (2, 1, 2)
    if cache.backend.name != "redis":
        return
    # A second, independent cache on the same server plays "another process".
    other = make_cache("redis", cache.config.redis_url)

    @cached(tenant=tenant, cache=other)
    def g(x: int) -> int:
        return x

    g(1)
    g(1)
    other.stats.flush()
    row = CacheManager(cache=cache).get_cache_stats()["tenants"][tenant]
    assert (row["hits"], row["misses"]) == (2, 3)
    assert CacheManager(cache=cache).get_cache_stats()["memory_used_bytes"] > 0
