"""The embedded backend: TTL, LRU bound, vector partitions."""

from __future__ import annotations

import numpy as np

from pmm_memo._binding import MISSING
from pmm_memo.backends._base import Entry, VectorQuery
from pmm_memo.backends.memory import MemoryBackend


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def entry(
    key: str,
    value: object = "v",
    *,
    tenant: str = "t",
    user: str = "",
    scope: str | None = None,
    vec: list[float] | None = None,
    embedder: str = "test/m/3",
) -> Entry:
    emb = None if vec is None else np.asarray(vec, np.float32) / np.linalg.norm(vec)
    return Entry(
        key=key,
        value=value,
        check=b"m",
        tenant=tenant,
        user=user,
        fn="f",
        fn_name="f",
        created_at=0.0,
        scope=scope,
        embedding=emb,
        embedder=None if vec is None else embedder,
    )


def test_ttl_expiry() -> None:
    clock = Clock()
    b = MemoryBackend(clock=clock)
    b.set(entry("a"), ttl_ms=1000)
    assert b.get("a") is not None
    clock.now = 0.999
    assert b.get("a") is not None
    clock.now = 1.0
    assert b.get("a") is None
    assert b.count("t") == 0


def test_hit_only_for_a_live_entry_with_the_same_check() -> None:
    """`hit` (the in-process hit path) answers only what `get` + the check compare would:
    another check (a hash collision) and an expired entry are misses, and a hit counts
    as a use for the LRU order."""
    clock = Clock()
    b = MemoryBackend(max_entries=2, clock=clock)
    b.set(entry("a", "va"), ttl_ms=1000)
    b.set(entry("b", "vb"), ttl_ms=5000)
    assert b.hit("a", b"m") == "va"
    assert b.hit("a", b"other material") is MISSING
    assert b.hit("absent", b"m") is MISSING
    b.set(entry("c", "vc"), ttl_ms=5000)  # evicts b: a was used more recently
    assert b.get("b") is None and b.hit("a", b"m") == "va"
    clock.now = 1.0
    assert b.hit("a", b"m") is MISSING


def test_lru_eviction_keeps_recently_used() -> None:
    b = MemoryBackend(max_entries=3)
    for k in "abc":
        b.set(entry(k), 10_000)
    assert b.get("a") is not None  # a is now most recent
    b.set(entry("d"), 10_000)
    assert b.get("b") is None
    assert all(b.get(k) is not None for k in "acd")


def test_knn_partitions_and_expiry() -> None:
    clock = Clock()
    b = MemoryBackend(clock=clock)
    b.set(entry("a", "A", scope="s", vec=[1, 0, 0]), 1000)
    b.set(entry("b", "B", scope="s", vec=[0.9, 0.1, 0]), 5000)
    b.set(entry("c", "C", scope="other", vec=[1, 0, 0]), 5000)
    b.set(entry("d", "D", scope="s", user="u2", vec=[1, 0, 0]), 5000)
    q = VectorQuery(
        tenant="t", vector=np.asarray([1, 0, 0], np.float32), k=5, fn="f", scope="s", user=""
    )
    assert [n.key for n in b.knn(q)] == ["a", "b"]
    clock.now = 2.0
    assert [n.key for n in b.knn(q)] == ["b"]  # a expired
    b.delete("b")
    assert b.knn(q) == []
    anyone = VectorQuery(tenant="t", vector=q.vector, k=5)
    assert sorted(n.key for n in b.knn(anyone)) == ["c", "d"]


def test_overwrite_replaces_vector_row() -> None:
    b = MemoryBackend()
    b.set(entry("a", "old", scope="s", vec=[1, 0]), 5000)
    b.set(entry("a", "new", scope="s", vec=[0, 1]), 5000)
    q = VectorQuery(
        tenant="t", vector=np.asarray([0, 1], np.float32), k=3, fn="f", scope="s", user=""
    )
    hits = b.knn(q)
    assert [(n.key, n.value) for n in hits] == [("a", "new")]
    assert abs(hits[0].similarity - 1.0) < 1e-6


def test_byte_bound_evicts_least_recently_used() -> None:
    b = MemoryBackend(max_bytes=25_000, max_value_bytes=20_000)
    for k in "abc":
        b.set(entry(k, "x" * 9000), 10_000)
    assert b.get("a") is None  # evicted: three ~9.3 KB entries exceed 25 KB
    assert b.get("b") is not None and b.get("c") is not None
    assert b.nbytes <= 25_000


def test_value_over_limit_is_refused() -> None:
    import pytest

    from pmm_memo import CodecError

    b = MemoryBackend(max_value_bytes=1000)
    with pytest.raises(CodecError, match="CACHE_MAX_VALUE_BYTES"):
        b.set(entry("big", np.zeros(1000)), 10_000)
    assert b.get("big") is None


def test_vectors_of_two_embedders_never_meet() -> None:
    """Partitions include the embedder: another space (or dimension) is never searched."""
    b = MemoryBackend()
    b.set(entry("a", "A", scope="s", vec=[1, 0, 0], embedder="x/m/3"), 5000)
    b.set(entry("b", "B", scope="s", vec=[1, 0, 0], embedder="y/m/3"), 5000)
    b.set(entry("c", "C", scope="s", vec=[1, 0, 0, 0], embedder="z/m/4"), 5000)
    vec3 = np.asarray([1, 0, 0], np.float32)
    for label, want in (("x/m/3", ["a"]), ("y/m/3", ["b"]), ("w/m/3", [])):
        q = VectorQuery(tenant="t", vector=vec3, k=5, fn="f", scope="s", user="", embedder=label)
        assert [n.key for n in b.knn(q)] == want
        assert all(n.embedder == label for n in b.knn(q))
    # Without an embedder filter (any space), vectors of another dimension are skipped.
    assert sorted(n.key for n in b.knn(VectorQuery(tenant="t", vector=vec3, k=5))) == ["a", "b"]
