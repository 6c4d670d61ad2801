"""Damaged entries on a real server: each is a miss that is counted and overwritten."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from pmm_memo import CacheManager, CodecError, cached, semantic_lookup
from pmm_memo._codec import checksum
from pmm_memo.backends.redis import RedisBackend
from tests.conftest import make_cache
from tests.support.entry_meta import write_meta
from tests.support.servers import ValkeyServer

Damage = Callable[[redis.Redis, str], None]
# A JSON tree that parses but does not build (Decimal refuses it: InvalidOperation, an
# ArithmeticError), with the checksum of what is stored: as someone with write access
# (or a bug) would leave it in a cache without a signing key.
UNBUILDABLE = b'{"$dec": "not a number"}'


def forge_unbuildable(client: Any, key: str) -> None:
    client.hset(key, "value", UNBUILDABLE)
    write_meta(client, key, codec=b"json", checksum=checksum(b"json", UNBUILDABLE))


CASES: list[tuple[str, Damage]] = [
    ("truncated value", lambda c, k: c.hset(k, "value", (c.hget(k, "value") or b"")[:5])),
    ("unknown format version", lambda c, k: write_meta(c, k, fmt=b"99")),
    ("the previous format's version", lambda c, k: write_meta(c, k, fmt=b"1")),
    ("unknown codec", lambda c, k: write_meta(c, k, codec=b"msgpack")),
    ("missing codec", lambda c, k: write_meta(c, k, codec=b"")),
    ("missing value field", lambda c, k: c.hdel(k, "value")),
    ("missing check", lambda c, k: write_meta(c, k, check=b"")),
    ("foreign check", lambda c, k: write_meta(c, k, check=b"ffffffffffffffff")),
    ("value read as another codec", lambda c, k: write_meta(c, k, codec=b"str")),
    ("missing checksum", lambda c, k: write_meta(c, k, checksum=b"")),
    ("checksum of another entry", lambda c, k: write_meta(c, k, checksum=b"0123456789abcdef")),
    ("meta cut short", lambda c, k: c.hset(k, "meta", (c.hget(k, "meta") or b"")[:20])),
    ("meta not ours", lambda c, k: c.hset(k, "meta", b"{}")),
    ("garbage json", lambda c, k: c.hset(k, "value", b"\xff\x00{not json")),
    ("check not UTF-8", lambda c, k: write_meta(c, k, check=b"\xff\xfe")),
    ("a value that does not build", forge_unbuildable),
]


@pytest.mark.parametrize(("case", "damage"), CASES, ids=[c[0] for c in CASES])
def test_damaged_entry_is_a_counted_miss_then_repaired(
    redis_url: str, search_server: ValkeyServer, case: str, damage: Damage
) -> None:
    cache = make_cache("redis", redis_url)
    calls: list[int] = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> dict[str, list[int]]:
        calls.append(x)
        return {"x": [x, x]}

    assert f(3) == {"x": [3, 3]}
    client = search_server.client()
    damage(client, f.cache_key(3))
    assert f(3) == {"x": [3, 3]}
    info = f.cache_info()
    assert len(calls) == 2 and info.hits == 0
    assert info.corrupt == 1
    assert f(3) == {"x": [3, 3]} and f.cache_info().hits == 1  # overwritten: a hit now


def test_wrong_length_embedding_is_never_a_semantic_hit(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url)
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    ask("How do I reset my password?")
    client = search_server.client()
    client.hset(ask.cache_key("How do I reset my password?"), "embedding", b"\x00" * 12)
    assert ask("how do i reset my password") == "how do i reset my password"
    assert ask("How do I reset my password?") == "How do I reset my password?"  # exact
    assert calls == ["How do I reset my password?", "how do i reset my password"]


NEIGHBOUR_DAMAGE: list[tuple[str, Damage]] = [
    # A field that is not UTF-8 (was: UnicodeDecodeError for the whole KNN reply).
    ("field not UTF-8", lambda c, k: c.hset(k, "user", b"\xff no")),
    # A value that parses but does not build (was: Decimal's own exception, likewise).
    ("value that does not build", lambda c, k: forge_unbuildable(c, k)),
]


@pytest.mark.parametrize(("case", "damage"), NEIGHBOUR_DAMAGE, ids=[c[0] for c in NEIGHBOUR_DAMAGE])
def test_a_damaged_neighbour_is_never_served_and_hides_no_other(
    server_url: str, case: str, damage: Damage
) -> None:
    """The neighbour's own damage, not the search's: every lookup near it used to miss
    and count an error until it was rewritten. On one server and on a cluster (whose
    search reads each neighbour itself)."""
    cache = make_cache("redis", server_url)

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return f"answer: {prompt}"

    ask("How do I reset my password?")
    ask("What is the capital of France?")
    backend = cache.backend
    assert isinstance(backend, RedisBackend)  # the cluster's too: a subclass
    damage(backend.client, ask.cache_key("How do I reset my password?"))
    assert ask("what is the capital of france") == "answer: What is the capital of France?"
    assert ask("how do i reset my password") == "answer: how do i reset my password"
    info = ask.cache_info()
    assert (info.errors, info.semantic_hits) == (0, 1)
    cache.close()


@pytest.mark.parametrize(
    ("field", "damaged"),
    [("text", b"\xff\xfe not UTF-8"), ("created_at", b"soon"), ("embedding", b"\x00" * 13)],
)
def test_the_manager_reads_a_damaged_field_as_a_codec_error(
    redis_url: str, field: str, damaged: bytes
) -> None:
    """`get_cache` and `report_wrong_hit` raise CodecError for a damaged entry, whatever
    field the damage is in (was: UnicodeDecodeError or ValueError for these three)."""
    cache = make_cache("redis", redis_url)
    manager = CacheManager(cache=cache)
    key = manager.put_cache("t", "alice", "greeting", "Hello!", embedding=[1.0] * 64)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    backend.client.hset(key, field, damaged)
    with pytest.raises(CodecError, match="does not read back"):
        manager.get_cache("t", "greeting")
    with pytest.raises(CodecError):
        manager.report_wrong_hit("t", "greeting", 0.9)
    cache.close()
