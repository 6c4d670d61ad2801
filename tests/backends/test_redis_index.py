"""The RediSearch index on real Valkey + RediSearch: schema, variants, conflicts, and the
plain-Valkey fallback."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import (
    CacheConfig,
    CacheManager,
    IndexSchemaError,
    SearchUnavailableError,
    cached,
    semantic_lookup,
)
from pmm_memo.backends._index import describe_existing
from pmm_memo.backends.redis import RedisBackend
from tests.conftest import make_cache
from tests.support.servers import ValkeyServer

Q = "How do I reset my password?"
NEAR = "how do i reset my password"


def _ask(cache: Any, calls: list[str]) -> Any:
    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    return ask


@pytest.mark.parametrize(
    ("algorithm", "vector_type"),
    [
        ("HNSW", "FLOAT32"),
        ("FLAT", "FLOAT32"),
        ("HNSW", "FLOAT16"),
        ("FLAT", "FLOAT16"),
    ],
)
def test_index_schema_and_variants(
    redis_url: str, search_server: ValkeyServer, algorithm: str, vector_type: str
) -> None:
    cache = make_cache("redis", redis_url, vector_algorithm=algorithm, vector_type=vector_type)
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert ask(Q) == ask(NEAR) == Q
    assert len(calls) == 1 and ask.cache_info().semantic_hits == 1
    client = search_server.client()
    name = cache.index_spec().name
    assert name.startswith("idx:cache:offline-64-")  # one index per embedder
    info = describe_existing(client.execute_command("FT.INFO", name))
    assert info["prefixes"] == ["cache:"]
    fields = info["fields"]
    assert fields["embedding"]["algorithm"] == algorithm
    assert fields["embedding"]["data_type"] == vector_type
    assert fields["embedding"]["dim"] == 64  # follows the embedder
    assert fields["embedding"]["metric"] == "COSINE"
    assert [fields[f]["type"] for f in ("text", "tenant", "user", "created_at")] == [
        "TEXT",
        "TAG",
        "TAG",
        "NUMERIC",
    ]
    for tag in ("part", "text_h"):  # the digests filters use (see _index)
        assert fields[tag]["type"] == "TAG" and fields[tag]["casesensitive"]
    assert not {"tenant_h", "user_h", "fn", "scope"} & set(fields)  # one `part` clause
    stored = client.hget(ask.cache_key(Q), "embedding")
    assert stored is not None and len(stored) == 64 * (2 if vector_type == "FLOAT16" else 4)
    assert info["num_docs"] >= 1


def test_semantic_hit_is_one_search_round_trip(redis_url: str, search_server: ValkeyServer) -> None:
    cache = make_cache("redis", redis_url)
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q)
    results: list[str] = []
    ours = [c.split()[0] for c in search_server.capture_commands(lambda: results.append(ask(NEAR)))]
    assert results == [Q] and calls == [Q]  # NEAR was answered by Q's entry
    assert ours == ["HMGET", "FT.SEARCH"], ours  # exact miss, then one KNN with the value


def test_a_hit_does_not_fetch_what_only_people_read(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url)
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q)
    results: list[str] = []
    sent = search_server.capture_commands(lambda: results.append(ask(NEAR)))
    assert results == [Q] and calls == [Q]
    (search,) = [c for c in sent if c.startswith("FT.SEARCH")]
    returned = search.split("RETURN")[1].split("LIMIT")[0]
    assert "text" in returned.split() and "tenant" in returned.split()
    assert "created_at" not in returned  # the decorators' KNN never reads it
    vector = cache.embed(Q, ask._memo().counters)
    (found,) = CacheManager(cache=cache).knn_search("t", vector, k=1)
    assert found["created_at"] > 0  # the manager's results still carry it


def test_conflicting_index_is_reported_never_silently_ignored(
    redis_url: str, search_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = search_server.client()
    cache = make_cache("redis", redis_url)
    client.execute_command(
        "FT.CREATE",
        cache.index_spec().name,
        "ON",
        "HASH",
        "PREFIX",
        "1",
        "cache:",
        "SCHEMA",
        "text",
        "TEXT",
        "embedding",
        "VECTOR",
        "FLAT",
        "6",
        "TYPE",
        "FLOAT32",
        "DIM",
        "1536",
        "DISTANCE_METRIC",
        "COSINE",
    )
    # The manager and the decorators handle it alike: logged, no vector, no hits.
    manager = CacheManager(cache=cache)
    assert manager.knn_search("t", [1.0] * 64) == []
    key = manager.put_cache("t", "u", "k", "hello", embedding=[1.0] * 64)
    assert manager.get_cache("t", key)["embedding"] is None  # type: ignore[index]
    assert "DIM 1536 (want 64)" in manager.health_check()["index_error"]
    calls: list[str] = []
    ask = _ask(make_cache("redis", redis_url), calls)
    assert ask(Q) == Q and ask(NEAR) == NEAR and ask(Q) == Q  # exact caching still works
    assert len(calls) == 2 and ask.cache_info().hits == 1
    assert client.hget(ask.cache_key(Q), "embedding") is None  # no vector the index ignores
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all("another schema" in r.message for r in errors)
    assert any("FT.DROPINDEX" in r.message for r in errors)  # says how to migrate
    assert len(errors) <= 4  # per cache: once for the write path, once for the search path


def test_plain_valkey_degrades_to_exact_with_one_warning(
    plain_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache("redis", plain_url)
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert [ask(Q), ask(NEAR), ask(Q), ask(NEAR)] == [Q, NEAR, Q, NEAR]
    assert len(calls) == 2
    warnings = [r.message for r in caplog.records if "no search module" in r.message]
    assert len(warnings) == 1
    assert CacheManager(cache=cache).health_check()["search_available"] is False


def test_require_search_is_an_error(plain_url: str) -> None:
    with pytest.raises(SearchUnavailableError, match="CACHE_REQUIRE_SEARCH"):
        CacheManager(
            CacheConfig(
                redis_url=plain_url,
                embedder="offline",
                embedding_dimensions=64,
                require_search=True,
            )
        )
    cache = make_cache("redis", plain_url, require_search=True)
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert ask(Q) == Q and ask(NEAR) == NEAR  # the decorator still fails open


def test_index_is_created_once_and_reused(redis_url: str) -> None:
    first = make_cache("redis", redis_url)
    _ask(first, [])(Q)
    second = make_cache("redis", redis_url)
    calls: list[str] = []
    assert _ask(second, calls)(NEAR) == Q  # a new process finds the same index and entry
    assert calls == []


def test_embed_key_written_atomically_with_ttl(redis_url: str, search_server: ValkeyServer) -> None:
    cache = make_cache("redis", redis_url)

    @cached(tenant="t", ttl=30, embed_key=True, cache=cache)
    def complete(prompt: str) -> str:
        return "x"

    complete(Q)
    client = search_server.client()
    key = complete.cache_key(Q)
    assert client.hget(key, "embedding") is not None
    assert 0 < client.ttl(key) <= 30


def test_index_lost_by_a_restart_is_recreated(tmp_path: Path) -> None:
    server = ValkeyServer(search=True, log_dir=tmp_path).start()
    try:
        cache = make_cache("redis", server.url, breaker_interval=0.1)
        calls: list[str] = []
        ask = _ask(cache, calls)
        assert ask(Q) == Q and ask(NEAR) == Q  # index created, semantic hit
        server.kill()
        server.start()  # no persistence: entries and index are gone
        time.sleep(0.2)
        assert ask(Q) == Q  # recomputed (the failed search is counted, not raised)
        assert ask(NEAR) == Q  # the index was re-created: semantic hits again
        assert calls == [Q, Q]
    finally:
        server.stop()


@pytest.mark.parametrize(("built", "configured"), [("HNSW", "FLAT"), ("FLAT", "HNSW")])
def test_an_index_built_with_the_other_algorithm_is_used_not_refused(
    redis_url: str, search_server: ValkeyServer, built: str, configured: str
) -> None:
    """The algorithm is a speed choice: an index made under the other setting (e.g. the
    earlier HNSW default) keeps semantic lookups working, queries following the index."""
    first = make_cache("redis", redis_url, vector_algorithm=built)
    first_calls: list[str] = []
    assert _ask(first, first_calls)(Q) == Q
    first.close()
    cache = make_cache("redis", redis_url, vector_algorithm=configured)
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert ask(NEAR) == Q and calls == [] and ask.cache_info().semantic_hits == 1
    assert ask.cache_info().errors == 0
    backend = cache.backend
    assert isinstance(backend, RedisBackend) and backend.index is not None
    assert backend.index.algorithm == built
    info = describe_existing(search_server.client().execute_command("FT.INFO", backend.index.name))
    assert info["fields"]["embedding"]["algorithm"] == built
    cache.close()


@pytest.mark.parametrize(("first", "then"), [("HNSW", "FLAT"), ("FLAT", "HNSW")])
def test_an_index_made_again_with_the_other_algorithm_is_adopted(
    redis_url: str, search_server: ValkeyServer, first: str, then: str
) -> None:
    """Two programs on one Redis: the other drops the index and makes it again under the
    other algorithm while this one runs. This one's next lookup may fail (counted), the
    ones after it follow the new index (was, for HNSW -> FLAT: every lookup failed on
    EF_RUNTIME until a restart)."""
    cache = make_cache("redis", redis_url, vector_algorithm=first)
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert ask(Q) == Q and ask(NEAR) == Q and ask.cache_info().semantic_hits == 1
    backend = cache.backend
    assert isinstance(backend, RedisBackend) and backend.index is not None
    name = backend.index.name
    search_server.client().execute_command("FT.DROPINDEX", name)  # the documents stay
    other = make_cache("redis", redis_url, vector_algorithm=then)
    other_backend = other.backend
    assert isinstance(other_backend, RedisBackend) and other_backend.ensure_index()
    ask("What is the capital of France?")  # may fail on the old query shape: counted
    assert ask(NEAR) == Q and ask.cache_info().semantic_hits == 2
    assert ask.cache_info().errors <= 1
    # HNSW's query has an EF_RUNTIME a FLAT index refuses, so FLAT is adopted; FLAT's
    # query is one an HNSW index also answers, so nothing needs adopting.
    assert backend.index is not None
    assert backend.index.algorithm == ("FLAT" if first == "HNSW" else first)
    other.close()
    cache.close()


def test_flat_is_the_default_algorithm() -> None:
    """Chosen by measurement (benchmarks/peers.py, README): see CacheConfig."""
    assert CacheConfig().vector_algorithm == "FLAT"


def test_two_embedders_and_two_dimensions_coexist(
    redis_url: str, search_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Same function, tenant and text under three embedders: each finds only its own."""
    from pmm_memo import Cache
    from pmm_memo.embedders import OfflineEmbedder

    class Renamed(OfflineEmbedder):
        name = "mine"  # same vectors, another space by name: never mixed

    caches = [
        make_cache("redis", redis_url),
        make_cache("redis", redis_url, embedding_dimensions=32),
        Cache(
            CacheConfig(redis_url=redis_url, embedder="offline", embedding_dimensions=64),
            embedder=Renamed(64),
        ),
    ]
    # Case/punctuation variants: similarity 1.0 to NEAR under all three embedders, so
    # only the embedder filter decides which one each cache may find.
    variants = [Q, Q.upper(), Q.rstrip("?") + "!!"]
    calls: list[str] = []

    def ask_on(cache: Cache) -> Any:
        @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
        def ask(prompt: str) -> str:
            calls.append(prompt)
            return prompt

        return ask

    asks = [ask_on(c) for c in caches]
    for ask, variant in zip(asks, variants, strict=True):
        assert ask(variant) == variant
    for i, ask in enumerate(asks):
        assert ask(NEAR) == variants[i]
        hits = CacheManager(cache=caches[i]).search_text("t", NEAR, k=10)
        assert [h["value"] for h in hits] == [variants[i]]  # its own space only
    assert calls == variants
    client = search_server.client()
    names = sorted(n.decode() for n in client.execute_command("FT._LIST"))
    assert len(names) == 3, names
    for name in names:
        assert describe_existing(client.execute_command("FT.INFO", name))["num_docs"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_two_programs_with_their_own_key_prefixes_each_get_their_own_index(
    redis_url: str, search_server: ValkeyServer
) -> None:
    """Two programs, one Redis, CACHE_KEY_PREFIX `app1:` and `app2:`, the default index
    name: each gets its own index (its prefix's part in the name) and semantic hits (was:
    the second found the first's index, IndexSchemaError, its semantic lookups off)."""
    caches = [make_cache("redis", redis_url, key_prefix=p) for p in ("app1:", "app2:")]
    names = set()
    for cache in caches:
        calls: list[str] = []
        ask = _ask(cache, calls)
        assert ask(Q) == Q and ask(NEAR) == Q and calls == [Q]
        assert ask.cache_info().semantic_hits == 1 and ask.cache_info().errors == 0
        backend = cache.backend
        assert isinstance(backend, RedisBackend) and backend.index is not None
        names.add(backend.index.name)
    assert len(names) == 2
    assert all(any(f"{p}-" in name for name in names) for p in ("app1", "app2"))
    # An index of that name made for another prefix (by hand, by another tool) is still
    # refused, and the error says to give this program its own CACHE_INDEX_NAME.
    third = make_cache("redis", redis_url, key_prefix="app3:")
    spec = third.index_spec()
    client = search_server.client()
    args = spec.create_args()
    args[args.index("PREFIX") + 2] = "app1:"
    client.execute_command(*args)
    with pytest.raises(IndexSchemaError) as info:
        third.backend.ensure_index()
    text = str(info.value)
    assert "CACHE_KEY_PREFIX 'app1:'" in text and "own CACHE_INDEX_NAME" in text
    for c in (*caches, third):
        c.close()
