"""From the first index schema (four filter tags `tenant_h`, `user_h`, `fn`, `scope`)
to the `part` tag, on real Valkey + RediSearch: the old index is never queried, entries
the old version wrote are misses (never another partition's answer), and the leftover
index is reported with the command that drops it. And from entry format 1 (a field each)
to format 2 (`meta`): old entries are quiet misses, rewritten by their own store."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest

from pmm_memo import Cache, CacheManager, CodecError, cached, semantic_lookup
from pmm_memo.backends._cluster_index import ids_of
from pmm_memo.backends._index import describe_existing
from pmm_memo.backends.redis import RedisBackend
from tests.conftest import make_cache, run
from tests.support.entry_meta import as_format_1
from tests.support.servers import ValkeyServer
from tests.test_cli import as_json, cli

Q = "How do I reset my password?"
NEAR = "how do i reset my password"
# The first schema's filter digests (pmm_memo before `part`): unkeyed BLAKE2b-96.
_OLD_KEYS = {"tenant_h": b"pmm_memo/tenant/v1", "user_h": b"pmm_memo/user/v1"}


def _old_tag(value: str, field: str) -> bytes:
    digest = hashlib.blake2b(value.encode(), digest_size=12, key=_OLD_KEYS[field])
    return digest.hexdigest().encode()


def _create_old_index(client: Any, cache: Cache) -> str:
    """The index exactly as the first schema created it (name, FILTER, fields)."""
    spec = cache.index_spec()
    assert spec.legacy_name is not None
    schema: list[Any] = ["text", "TEXT", "tenant", "TAG", "user", "TAG"]
    schema += ["created_at", "NUMERIC", "SORTABLE", "embedding", "VECTOR", "FLAT", 6]
    schema += ["TYPE", "FLOAT32", "DIM", spec.dim, "DISTANCE_METRIC", "COSINE"]
    for tag in ("tenant_h", "user_h", "fn", "scope", "text_h"):
        schema += [tag, "TAG", "CASESENSITIVE"]
    client.execute_command(
        "FT.CREATE",
        spec.legacy_name,
        "ON",
        "HASH",
        "PREFIX",
        1,
        spec.prefix,
        "FILTER",
        f'@emb=="{spec.embedder_tag}"',
        "SCHEMA",
        *schema,
    )
    return spec.legacy_name


def _as_old_version_wrote(client: Any, key: str) -> None:
    """Rewrite an entry in the first schema's layout: no `part`, the four old tags, and
    entry format 1 (no `meta`)."""
    as_format_1(client, key)
    fields = client.hgetall(key)
    assert b"part" in fields and b"tenant_h" not in fields
    client.hdel(key, "part")
    client.hset(
        key,
        mapping={
            "tenant_h": _old_tag(fields[b"tenant"].decode(), "tenant_h"),
            "user_h": _old_tag(fields[b"user"].decode(), "user_h"),
        },
    )


def _ask(cache: Cache, calls: list[str]) -> Any:
    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str, user_id: str = "") -> str:
        calls.append(prompt)
        return f"{user_id}: {prompt}"

    return ask


def test_index_name_changed_with_the_schema() -> None:
    spec = make_cache("redis", "redis://127.0.0.1:1").index_spec()
    assert spec.legacy_name is not None and spec.legacy_name.startswith("idx:cache:offline-64-")
    assert spec.name == spec.legacy_name + ":v2"
    assert "part" in spec.create_args() and "tenant_h" not in spec.create_args()


def test_old_index_is_never_queried_and_old_entries_are_misses(
    redis_url: str, search_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = search_server.client()
    old_cache = make_cache("redis", redis_url)
    legacy = _create_old_index(client, old_cache)
    calls: list[str] = []
    old_ask = _ask(old_cache, calls)
    assert old_ask(Q, user_id="alice") == f"alice: {Q}"
    _as_old_version_wrote(client, old_ask.cache_key(Q, user_id="alice"))
    old_cache.close()

    caplog.set_level(logging.WARNING, logger="pmm_memo")
    cache = make_cache("redis", redis_url)
    spec = cache.index_spec()
    ask = _ask(cache, calls)
    seen: list[str] = []
    commands = search_server.capture_commands(lambda: seen.append(ask(NEAR, user_id="alice")))
    # The old entry is a miss (the new filter cannot match it), never served as a hit.
    assert seen == [f"alice: {NEAR}"] and ask.cache_info().semantic_hits == 0
    searched = [c.split()[1] for c in commands if c.split()[0] == "FT.SEARCH"]
    assert searched == [spec.name], commands  # the new index only, never the old one
    assert legacy.encode() in client.execute_command("FT._LIST")  # left alone, not dropped
    # Written now in the new layout: the next near call is a hit; no other user gets it.
    assert ask(Q, user_id="alice") == f"alice: {NEAR}"
    assert ask.cache_info().semantic_hits == 1
    assert ask(NEAR + "?", user_id="bob") == f"bob: {NEAR}?"
    assert ask.cache_info().semantic_hits == 1
    new_fields = describe_existing(client.execute_command("FT.INFO", spec.name))["fields"]
    assert "part" in new_fields and "tenant_h" not in new_fields
    warned = [r.getMessage() for r in caplog.records if legacy in r.getMessage()]
    assert warned and f"FT.DROPINDEX {legacy}" in warned[0]
    cache.close()


def test_old_entries_in_the_old_index_are_never_another_users_answer(
    redis_url: str, search_server: ValkeyServer
) -> None:
    """An old entry even given the new `part` tags of another partition (as a bug or an
    intruder might) is still re-checked against its plain tenant/user: a miss."""
    client = search_server.client()
    cache = make_cache("redis", redis_url)
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q, user_id="alice")
    key = ask.cache_key(Q, user_id="alice")
    _as_old_version_wrote(client, key)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    fn, scope = (client.hget(key, f).decode() for f in ("fn", "scope"))
    client.hset(key, "part", backend.partitions().tags("t", "bob", fn, scope))
    bob = backend.partitions().call("t", "bob", fn, scope)
    found = client.execute_command(
        "FT.SEARCH", cache.index_spec().name, f"@part:{{{bob}}}", "NOCONTENT", "DIALECT", 2
    )
    assert key in ids_of(found)  # bob's filter finds it: only the re-check stands between
    assert ask(NEAR, user_id="bob") == f"bob: {NEAR}"
    assert ask.cache_info().semantic_hits == 0
    cache.close()


def test_leftover_old_index_is_reported_by_health_check_and_cli(
    redis_url: str, search_server: ValkeyServer
) -> None:
    client = search_server.client()
    cache = make_cache("redis", redis_url)
    manager = CacheManager(cache=cache)
    assert manager.health_check()["leftover_indexes"] == []
    legacy = _create_old_index(client, cache)
    report = manager.health_check()
    assert report["leftover_indexes"] == [
        {"index": legacy, "num_docs": 0, "remove": f"FT.DROPINDEX {legacy}"}
    ]
    assert report["healthy"]  # a leftover costs memory, it breaks nothing
    cli_report = as_json(cli("health", "--json", url=redis_url))  # the same settings
    assert cli_report["leftover_indexes"] == report["leftover_indexes"]
    client.execute_command("FT.DROPINDEX", legacy)
    assert manager.health_check()["leftover_indexes"] == []
    # Someone else's index under that name (no first-schema tags) is not ours to drop.
    client.execute_command("FT.CREATE", legacy, "ON", "HASH", "SCHEMA", "text", "TEXT")
    assert manager.health_check()["leftover_indexes"] == []
    client.execute_command("FT.DROPINDEX", legacy)
    cache.close()


def test_cluster_lists_old_schema_indexes_on_every_node(cluster_url: str) -> None:
    """A cluster's old per-primary indexes (`<legacy name>{n}`) are leftovers too."""
    cache = make_cache("redis", cluster_url, vector_algorithm="FLAT")
    manager = CacheManager(cache=cache)
    manager.put_cache("t", None, "k", "text", [1.0] * cache.dimensions)
    assert manager.health_check()["leftover_indexes"] == []
    spec = cache.index_spec()
    client: Any = cache.backend.client  # type: ignore[attr-defined]
    old = f"{spec.legacy_name}{{0}}"
    client.execute_command(
        "FT.CREATE", old, "ON", "HASH", "PREFIX", 1, spec.prefix, "SCHEMA", "text", "TEXT"
    )
    try:
        leftovers = manager.health_check()["leftover_indexes"]
        assert [x["index"] for x in leftovers] == [old]
        assert leftovers[0]["remove"].endswith(f"FT.DROPINDEX {old}")
        assert manager.knn_search("t", [1.0] * cache.dimensions, k=1)[0]["text"] == "text"
    finally:
        client.execute_command("FT.DROPINDEX", old)
    cache.close()


# -- entry format 1 (every field on its own) -> 2 (`meta`) ----------------------------------


def _client(cache: Cache) -> Any:
    return cache.backend.client  # type: ignore[attr-defined]  # a server's or a cluster's


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_format_1_entry_is_a_quiet_miss_then_rewritten(server_url: str, use_async: bool) -> None:
    """What the previous version stored is neither served nor counted as damage: the
    miss recomputes and its store replaces every old field."""
    cache = make_cache("redis", server_url)
    calls: list[int] = []

    def body(x: int) -> dict[str, int]:
        calls.append(x)
        return {"x": x}

    if use_async:

        @cached(tenant="t", cache=cache)
        async def af(x: int) -> dict[str, int]:
            return body(x)

        f: Any = lambda x: run(af(x))  # noqa: E731
        info, key = af.cache_info, af.cache_key(1)
    else:
        sf = cached(tenant="t", cache=cache)(body)
        f, info, key = sf, sf.cache_info, sf.cache_key(1)
    client = _client(cache)
    assert f(1) == {"x": 1}
    as_format_1(client, key)
    assert f(1) == {"x": 1} and calls == [1, 1]
    assert (info().hits, info().corrupt) == (0, 0)
    fields = client.hgetall(key)
    assert b"meta" in fields and not {b"fmt", b"codec", b"sum", b"check", b"fn"} & set(fields)
    assert f(1) == {"x": 1} and info().hits == 1 and calls == [1, 1]
    cache.close()


def test_a_format_1_semantic_entry_is_never_a_candidate(server_url: str) -> None:
    cache = make_cache("redis", server_url)
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q, user_id="alice")
    as_format_1(_client(cache), ask.cache_key(Q, user_id="alice"))
    assert ask(NEAR, user_id="alice") == f"alice: {NEAR}"
    assert ask.cache_info().semantic_hits == 0 and calls == [Q, NEAR]
    # Q's own call: its exact key still holds the format-1 entry (a miss). The KNN may
    # rank that entry first (then it takes the one slot that may answer: a miss, Q
    # recomputed) or NEAR's entry first (a semantic hit on it); never the old answer
    # without a call.
    got = ask(Q, user_id="alice")
    assert (got, calls) in [(f"alice: {NEAR}", [Q, NEAR]), (f"alice: {Q}", [Q, NEAR, Q])]
    cache.close()


def test_clearing_a_function_removes_its_format_1_entries(server_url: str) -> None:
    """The previous version would have cleared them; during a rolling upgrade it may
    still be serving them."""
    cache = make_cache("redis", server_url)

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        return x

    @cached(tenant="t", cache=cache)
    def g(x: int) -> int:
        return -x

    client = _client(cache)
    for x in range(4):
        f(x), g(x)
    for x in (0, 1):
        as_format_1(client, f.cache_key(x))
        as_format_1(client, g.cache_key(x))
    assert f.cache_clear() == 4
    assert not any(client.exists(f.cache_key(x)) for x in range(4))
    assert all(client.exists(g.cache_key(x)) for x in range(4))
    cache.close()


def test_the_manager_reads_a_format_1_entry_as_absent(server_url: str) -> None:
    """`put_cache` by the previous version, `get_cache` by this one (a rolling upgrade):
    the entry is not there for this version (None), not an error for the caller; a
    `meta` that does not unpack still is one (damage)."""
    cache = make_cache("redis", server_url)
    manager = CacheManager(cache=cache)
    client = _client(cache)
    key = manager.put_cache("t", "alice", "greeting", "Hello!")
    as_format_1(client, key)
    assert manager.get_cache("t", "greeting") is None
    assert manager.report_wrong_hit("t", "greeting", 0.9) is False
    client.hset(key, "meta", b"2\x1fstr")
    with pytest.raises(CodecError):
        manager.get_cache("t", "greeting")
    cache.close()
