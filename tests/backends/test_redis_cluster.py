"""Redis Cluster: URLs, one-slot and whole-cluster operations, per-primary semantic
indexes against single-node FLAT ground truth, and faults on real clusters (a frozen
shard, a killed and restarted shard, a slot migrated under load, a fourth node)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pytest
import redis
from redis.crc import key_slot

from pmm_memo import CacheConfig, CacheManager, ConfigError, cached, semantic_lookup
from pmm_memo._config import mask_url
from pmm_memo.backends._base import VectorQuery
from pmm_memo.backends._cluster_connect import ClusterTarget, parse_cluster_url
from pmm_memo.backends._cluster_index import ids_of, knn_args, plan_names
from pmm_memo.backends.redis_cluster import RedisClusterBackend
from tests.conftest import make_cache, run
from tests.support.servers import ValkeyCluster


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+cluster://127.0.0.1:7000", ClusterTarget([("127.0.0.1", 7000)], False, None, None)),
        (
            "rediss+cluster://app:p%40ss@h1:1,h2:2/",
            ClusterTarget([("h1", 1), ("h2", 2)], True, "app", "p@ss"),
        ),
        ("redis+cluster://:pw@[::1]:7000/0", ClusterTarget([("::1", 7000)], False, None, "pw")),
    ],
)
def test_cluster_urls_parse(url: str, expected: ClusterTarget) -> None:
    assert parse_cluster_url(url) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis+cluster://h1:1,h2", "h2"),
        ("redis+cluster://h1:1/3", "one database"),
        ("redis+cluster://:secret@h1:x", "host:port"),
        ("redis+cluster://h1:1?ssl=true", "query"),
    ],
)
def test_bad_cluster_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        CacheConfig(redis_url=url)
    assert "secret" not in str(info.value)


def test_cluster_url_is_masked_and_hash_tags_refused() -> None:
    assert mask_url("redis+cluster://u:s3cret@h1:1,h2:2") == "redis+cluster://u:***@h1:1,h2:2"
    for setting in ({"key_prefix": "cache{x}:"}, {"index_name": "idx{a}"}):
        with pytest.raises(ConfigError, match="on a Redis Cluster"):
            CacheConfig(redis_url="redis+cluster://h:1", **setting)


def test_index_names_route_to_their_primary_and_are_deterministic() -> None:
    owners = {s: ("a" if s < 5461 else "b" if s < 10922 else "c") for s in range(16384)}
    names = plan_names("idx:cache", owners)
    assert set(names) == {"a", "b", "c"}
    for node, name in names.items():
        assert owners[key_slot(name.encode())] == node
    assert plan_names("idx:cache", owners) == names


def test_search_reply_parsed_without_its_fields() -> None:
    # The server bug this design avoids: fields come back empty (None) for documents
    # outside the index name's slot. Only ids are read.
    reply = [3, b"cache:t:1", None, b"cache:t:2", [], b"cache:t:3", [b"__score", b""]]
    assert ids_of(reply) == ["cache:t:1", "cache:t:2", "cache:t:3"]
    assert ids_of([0]) == [] and ids_of(None) == []
    args = ["FT.SEARCH", "idx", "q", "RETURN", 2, "a", "b", "LIMIT", 0, 1]
    assert knn_args(args, "idx{7}") == ["FT.SEARCH", "idx{7}", "q", "NOCONTENT", "LIMIT", 0, 1]


# -- one-slot and whole-cluster operations on the session cluster ------------------------


def _keys_per_node(cluster: ValkeyCluster) -> list[int]:
    out = []
    for node in cluster.nodes:
        with node.client() as c:
            out.append(int(c.dbsize()))
    return out


def test_entries_spread_and_whole_cluster_operations(
    cluster_url: str, cluster_server: ValkeyCluster
) -> None:
    cache = make_cache("redis", cluster_url)
    assert isinstance(cache.backend, RedisClusterBackend)

    @cached(tenant="pmm_db", cache=cache)
    def square(x: int) -> int:
        return x * x

    for i in range(60):
        square(i)
    # No hash tag on entries: one tenant lands on every primary.
    assert all(n > 5 for n in _keys_per_node(cluster_server))
    assert [square(i) for i in range(60)] == [i * i for i in range(60)]
    manager = CacheManager(cache=cache)
    assert manager.count_entries("pmm_db") == 60
    stats = manager.get_cache_stats()
    assert stats["tenants"]["pmm_db"]["entries"] == 60
    with cluster_server.nodes[0].client() as one:
        assert stats["memory_used_bytes"] > int(one.info("memory")["used_memory"])
    report = manager.health_check()
    assert report["healthy"] and report["nodes_ok"] == 3 and len(report["nodes"]) == 3
    assert manager.clear_tenant_cache("pmm_db") == 60
    assert sum(_keys_per_node(cluster_server)) <= 1  # a stats hash may remain
    cache.close()


def test_bulk_write_spans_slots_with_ttls(cluster_url: str, cluster_server: ValkeyCluster) -> None:
    cache = make_cache("redis", cluster_url)
    manager = CacheManager(cache=cache)

    @cached(tenant="pmm_bot", ttl=100, cache=cache)
    def f(x: int) -> int:
        return x

    entries = []
    from pmm_memo.backends._base import Entry

    for i in range(250):
        key = f"cache:bulk:{i:032x}"
        entries.append(Entry(key, i, "c", "bulk", "", "fn", "fn", time.time()))
    assert cache.backend.set_many(entries, 50_000, bulk=True) == 250
    assert manager.count_entries("bulk") == 250
    for node in cluster_server.nodes:
        with node.client() as c:
            for key in c.scan_iter(match="cache:bulk:*"):
                assert 0 < c.pttl(key) <= 50_000
    got = cache.backend.get_many([e.key for e in entries])
    assert [g.value for g in got] == list(range(250))  # type: ignore[union-attr]
    cache.close()


def test_recall_at_1_equals_flat_ground_truth(cluster_url: str) -> None:
    cache = make_cache("redis", cluster_url, vector_algorithm="FLAT")
    manager = CacheManager(cache=cache)
    rng = np.random.default_rng(7)
    dim = cache.dimensions
    vectors = rng.standard_normal((600, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = [manager.put_cache("pmm_db", None, f"k{i}", f"t{i}", v) for i, v in enumerate(vectors)]
    queries = rng.standard_normal((60, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argmax(queries @ vectors.T, axis=1)
    for q, best in zip(queries, truth, strict=True):
        top = manager.knn_search("pmm_db", q, k=3)
        assert top[0]["key"] == keys[best]
        assert top[0]["similarity"] == pytest.approx(float(q @ vectors[best]), abs=1e-5)
        assert [t["similarity"] for t in top] == sorted(
            (t["similarity"] for t in top), reverse=True
        )

    async def aknn() -> list[Any]:
        q = VectorQuery("pmm_db", queries[0], 1)
        return await cache.backend.aknn(q)

    assert run(aknn())[0].key == keys[truth[0]]
    cache.close()


# -- faults, each on its own cluster -------------------------------------------------------


def _key_on(cache: Any, node_port: int, fn: Any, start: int = 0) -> int:
    """An argument of `fn` whose entry lives on the node with this port."""
    for i in range(start, start + 10_000):
        if cache.backend.shard_of(fn.cache_key(i)).endswith(f":{node_port}"):
            return i
    raise AssertionError("no key found")


def test_frozen_shard_costs_its_keys_one_timeout_and_spares_the_others(
    own_cluster: ValkeyCluster, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache("redis", own_cluster.url, socket_timeout=1.0, breaker_interval=60)

    @cached(tenant="pmm_llm", cache=cache)
    def f(x: int) -> int:
        return x + 1

    frozen = own_cluster.nodes[1]
    on_frozen = [_key_on(cache, frozen.port, f, s) for s in (0, 20_000, 40_000)]
    healthy = [
        i
        for i in range(40)
        if not cache.backend.shard_of(f.cache_key(i)).endswith(f":{frozen.port}")
    ]
    for i in healthy + on_frozen:
        f(i)
    frozen.freeze()
    try:
        start = time.monotonic()
        for _ in range(10):
            assert [f(i) for i in on_frozen] == [i + 1 for i in on_frozen]
        slow = time.monotonic() - start
        before = f.cache_info().hits
        assert [f(i) for i in healthy] == [i + 1 for i in healthy]
        assert f.cache_info().hits == before + len(healthy)  # other shards still hit
    finally:
        frozen.thaw()
    # 30 calls on the frozen shard: one timeout (1 s), not one per call or per retry.
    assert slow < 10.0
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and str(frozen.port) in warnings[0].getMessage()
    assert not cache.breaker.is_open  # the whole cache never switched off
    cache.close()


def test_killed_and_restarted_shard_recovers_with_its_index(
    own_cluster: ValkeyCluster, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache("redis", own_cluster.url, breaker_interval=0.3)
    calls: list[str] = []

    @semantic_lookup(threshold=0.97, tenant="pmm_llm", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer " + prompt

    words = "amber basil cobalt dune ember fjord glacier harbor iris jade kelp lotus".split()
    rng = np.random.default_rng(11)
    prompts = [" ".join(rng.permutation(words)[:6]) + f" {i * 7919}" for i in range(12)]
    for p in prompts:
        ask(p)
    victim = own_cluster.nodes[2]
    victim.kill()
    for p in prompts:  # every call answers; keys on the dead shard are recomputed
        assert ask(p) == "answer " + p
    victim.start()  # same port and config file: same node, same slots, empty
    own_cluster.wait_ok()
    time.sleep(0.4)
    calls.clear()
    for p in prompts:
        assert ask(p) == "answer " + p
    for p in prompts:
        assert ask(p + "?") == "answer " + p  # near-duplicates hit on every shard again
    assert len(calls) <= len(prompts)
    assert CacheManager(cache=cache).health_check()["healthy"]
    cache.close()


def test_slot_migration_under_load_never_answers_wrong(own_cluster: ValkeyCluster) -> None:
    cache = make_cache("redis", own_cluster.url, socket_timeout=2.0)

    @cached(tenant="pmm_db", cache=cache)
    def f(x: int) -> str:
        return f"value-{x}"

    for i in range(300):
        f(i)
    wrong: list[Any] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for i in range(0, 300, 7):
                v = f(i)
                if v != f"value-{i}":
                    wrong.append((i, v))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        target = own_cluster.nodes[0]
        slots = sorted({key_slot(f.cache_key(i).encode()) for i in range(0, 300, 7)})
        for slot in slots[-10:]:
            own_cluster.migrate_slot(slot, target)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert wrong == []
    assert not cache.breaker.is_open
    assert cache.backend.open_shards() == []  # type: ignore[attr-defined]
    assert [f(i) for i in range(300)] == [f"value-{i}" for i in range(300)]
    cache.close()


def test_fourth_node_gets_an_index_and_leftovers_are_reported(
    own_cluster: ValkeyCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pmm_memo")
    cache = make_cache("redis", own_cluster.url, vector_algorithm="FLAT")
    manager = CacheManager(cache=cache)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, cache.dimensions)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = [manager.put_cache("t", None, f"k{i}", f"t{i}", v) for i, v in enumerate(vectors)]
    before = manager.health_check()
    names = {n["node"]: n["index"] for n in before["nodes"]}
    fourth = own_cluster.add_node()
    # Give the new node some entries' slots and the slot of one index name.
    moved = sorted({key_slot(k.encode()) for k in keys[:20]})
    name_slot = key_slot(next(iter(names.values())).encode())
    for slot in [*moved, name_slot]:
        own_cluster.migrate_slot(slot, fourth)
    probes = (0, 5, 19, 150)  # entries that moved, and one that did not
    deadline = time.monotonic() + 30
    while True:
        # A new index fills from existing keys in the background (FT.CREATE backfill):
        # until then a lookup may miss, never answer another entry's key as a match.
        found = [manager.knn_search("t", vectors[i], k=1)[0] for i in probes]
        if [f["key"] for f in found] == [keys[i] for i in probes]:
            break
        assert time.monotonic() < deadline, "the new node's entries never became searchable"
        time.sleep(0.2)
    report = manager.health_check()
    assert len(report["nodes"]) == 4 and report["healthy"]
    assert any(n["node"].endswith(f":{fourth.port}") and n["index"] for n in report["nodes"])
    leftovers = report["leftover_indexes"]
    assert [x["slot"] for x in leftovers] == [name_slot]
    assert "FT.DROPINDEX" in leftovers[0]["remove"]
    cache.close()


def test_a_cluster_down_at_start_is_a_miss_not_a_crash() -> None:
    cache = make_cache("redis", "redis+cluster://127.0.0.1:1", connect_timeout=0.2)

    @cached(tenant="pmm_db", cache=cache)
    def f(x: int) -> int:
        return x

    assert f(1) == 1 and f.cache_info().errors >= 1
    assert CacheManager(cache=cache).health_check()["healthy"] is False
    with pytest.raises(redis.ConnectionError):
        cache.backend.ping()


def test_a_dead_shard_in_a_batch_write_keeps_the_rest_of_the_cache_on(
    own_cluster: ValkeyCluster,
) -> None:
    """A batch write (the embedding cache's `write_many`) with keys on a dead primary:
    its keys are skipped and its breaker opens; the whole cache stays on (was: the raw
    ConnectionError reached `Cache`, which switched every shard off)."""
    from pmm_memo.embedders._cached import CachedEmbedder
    from pmm_memo.embedders.offline import OfflineEmbedder

    class Remote(OfflineEmbedder):
        remote = True

    cache = make_cache("redis", own_cluster.url, breaker_interval=60)
    embedder = CachedEmbedder(Remote(dim=16), cache)

    @cached(tenant="pmm_db", cache=cache)
    def f(x: int) -> int:
        return x

    victim = own_cluster.nodes[2]
    healthy = [
        i
        for i in range(30)
        if not cache.backend.shard_of(f.cache_key(i)).endswith(f":{victim.port}")
    ]
    for i in healthy:
        f(i)
    victim.kill()
    for _ in range(2):  # first: the connection fails; then: the shard's breaker is open
        texts = [f"text {i}" for i in range(30)]
        assert embedder.embed(texts).shape == (30, 16)
    assert not cache.breaker.is_open
    assert [n.endswith(f":{victim.port}") for n in cache.backend.open_shards()] == [True]  # type: ignore[attr-defined]
    before = f.cache_info().hits
    assert [f(i) for i in healthy] == healthy
    assert f.cache_info().hits == before + len(healthy)
    cache.close()
    # Processes started during the outage: their first batch also learns the server's
    # limits (CONFIG GET, a random node) and whether it can search (every primary).
    for n in range(6):
        late = make_cache("redis", own_cluster.url, breaker_interval=60)
        CachedEmbedder(Remote(dim=16), late).embed([f"late {n} {i}" for i in range(30)])
        assert run(CachedEmbedder(Remote(dim=16), late).aembed(["a", "b", "c", "d"])).shape[0] == 4
        assert not late.breaker.is_open
        late.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_primary_dying_under_semantic_lookups_spares_the_other_shards(
    own_cluster: ValkeyCluster, mode: str
) -> None:
    """The KNN's first contact with a dead primary (its breaker still closed): that
    shard is left out of the search, the others' neighbours still hit (was, sync: the
    pipeline's ConnectionError switched the whole cache off)."""
    cache = make_cache("redis", own_cluster.url, breaker_interval=60)
    calls: list[str] = []

    @semantic_lookup(threshold=0.97, tenant="pmm_llm", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer " + prompt

    @semantic_lookup(threshold=0.97, tenant="pmm_llm", cache=cache)
    async def aask(prompt: str) -> str:
        calls.append(prompt)
        return "answer " + prompt

    victim = own_cluster.nodes[2]

    fn = ask if mode == "sync" else aask

    def healthy(p: str) -> bool:
        return not cache.backend.shard_of(fn.cache_key(p)).endswith(f":{victim.port}")

    # Entries and their near-duplicates (own keys) on the shards that stay up.
    words = (
        "otter falcon maple granite violin saffron harbor tundra comet walnut lantern "
        "meadow cobalt quartz pepper glacier orchid canyon ember willow bison lagoon "
        "thistle marble"
    ).split()
    prompts = [f"tell me everything about the {w}" for w in words]
    pairs = [(p, p + "?") for p in prompts if healthy(p) and healthy(p + "?")]
    for p, _ in pairs:
        ask(p) if mode == "sync" else run(aask(p))
    victim.kill()
    calls.clear()
    for p, near in pairs:
        got = ask(near) if mode == "sync" else run(aask(near))
        assert got in ("answer " + p, "answer " + near)
    assert not cache.breaker.is_open
    assert len(pairs) > 5 and calls == []  # every neighbour on a live shard still hit
    cache.close()


def test_slot_map_re_reads_skip_a_frozen_primary(
    own_cluster: ValkeyCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Semantic lookups re-read the slot map every TOPOLOGY_TTL: with a primary frozen
    (its breaker open) that re-read asks the others first (was: redis-py's random order
    made most re-reads, and the lookup doing them, wait a socket timeout)."""
    from pmm_memo.backends import _cluster_search

    monkeypatch.setattr(_cluster_search, "TOPOLOGY_TTL", 0.3)
    cache = make_cache(
        "redis", own_cluster.url, breaker_interval=60, socket_timeout=2.0, connect_timeout=2.0
    )

    @semantic_lookup(threshold=0.97, tenant="pmm_llm", cache=cache)
    def ask(prompt: str) -> str:
        return "answer " + prompt

    frozen = own_cluster.nodes[0]

    def healthy(p: str) -> bool:
        return not cache.backend.shard_of(ask.cache_key(p)).endswith(f":{frozen.port}")

    words = "otter falcon maple granite violin saffron harbor tundra comet walnut".split()
    prompts = [
        p for p in (f"tell me about the {w}" for w in words) if healthy(p) and healthy(p + "?")
    ]
    for p in prompts:
        ask(p)
    frozen.freeze()
    try:
        ask(prompts[0] + "?")  # its KNN meets the frozen shard: one timeout, breaker open
        took = []
        for _ in range(4):
            for p in prompts:
                start = time.monotonic()
                assert ask(p + "?") == "answer " + p
                took.append(time.monotonic() - start)
            time.sleep(0.35)  # a re-read of the slot map at least once per round
    finally:
        frozen.thaw()
    assert len(prompts) > 3
    assert sum(took) < 1.5  # not one 2 s timeout
    cache.close()
