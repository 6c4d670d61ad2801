"""Entries that are not ours are never served, exact or semantic: moved or relabelled
entries under a signing key, entries written under another CACHE_SIGNING_KEY or
CACHE_HASH_SECRET (or none)."""

from __future__ import annotations

from typing import Any

import pytest

from pmm_memo import Cache, CacheConfig, cached, semantic_lookup
from pmm_memo.backends.memory import MemoryBackend
from pmm_memo.backends.redis import tenant_tag, user_tag
from tests.conftest import make_cache, run
from tests.support.servers import ValkeyServer

ALICE_KEY = "alice-signing-key-0123456789"
PROMPT = "what is the salary of the chief executive"
NEAR = "what is the salary of the chief executive?"


def _ask(cache: Cache, tenant: str = "t") -> Any:
    @semantic_lookup(0.8, tenant=tenant, cache=cache)
    def ask(prompt: str, user_id: str = "") -> str:
        return f"answer for {user_id}: {prompt}"

    return ask


def test_value_fields_moved_to_another_key_do_not_verify(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url, signing_key=ALICE_KEY)

    @cached(tenant="t", cache=cache)
    def secret(user: str) -> str:
        return f"{user}'s private data"

    assert secret("alice") == "alice's private data"
    assert secret("bob") == "bob's private data"
    client = search_server.client()
    alice, bob = secret.cache_key("alice"), secret.cache_key("bob")
    # Someone with write access puts alice's signed value into bob's entry (bob's check
    # digest, tenant and user fields stay, so every unsigned check still passes).
    for field in ("codec", "value", "sig", "sum", "fmt"):
        client.hset(bob, field, client.hget(alice, field))
    assert secret("bob") == "bob's private data"
    assert secret.cache_info().corrupt == 1


def _relabel_for_bob(client: Any, alice_key: str, bob_scope: bytes, new_key: str) -> None:
    """Copy alice's entry (value, signature, embedding) to a new key in bob's partition."""
    fields = client.hgetall(alice_key)
    fields[b"user"] = b"bob"
    fields[b"user_h"] = user_tag("bob").encode()
    fields[b"scope"] = bob_scope
    client.hset(new_key, mapping=fields)
    client.expire(new_key, 60)


def _async_ask(cache: Cache) -> Any:
    @semantic_lookup(0.8, tenant="t", cache=cache)
    async def ask(prompt: str, user_id: str = "") -> str:
        return f"answer for {user_id}: {prompt}"

    return ask


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_relabelled_entry_is_never_a_semantic_hit(
    redis_url: str, search_server: ValkeyServer, use_async: bool
) -> None:
    cache = make_cache("redis", redis_url, signing_key=ALICE_KEY)
    ask = _async_ask(cache) if use_async else _ask(cache)

    def call(prompt: str, user: str) -> str:
        result: str = run(ask(prompt, user_id=user)) if use_async else ask(prompt, user_id=user)
        return result

    assert call(PROMPT, "alice") == f"answer for alice: {PROMPT}"
    call("an unrelated question about zebras", "bob")
    client = search_server.client()
    bob_scope = client.hget(ask.cache_key("an unrelated question about zebras", "bob"), "scope")
    assert bob_scope is not None
    _relabel_for_bob(client, ask.cache_key(PROMPT, "alice"), bob_scope, "cache:t:" + "ab" * 16)
    assert call(NEAR, "bob") == f"answer for bob: {NEAR}"  # not alice's answer
    assert ask.cache_info().semantic_hits == 0


def test_entry_moved_to_another_tenant_is_never_a_semantic_hit(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url, signing_key=ALICE_KEY)
    ask_a, ask_b = _ask(cache, "tenant_a"), _ask(cache, "tenant_b")
    ask_a(PROMPT, user_id="u")
    client = search_server.client()
    fields = client.hgetall(ask_a.cache_key(PROMPT, "u"))
    fields[b"tenant"] = b"tenant_b"
    fields[b"tenant_h"] = tenant_tag("tenant_b").encode()
    client.hset("cache:tenant_b:" + "cd" * 16, mapping=fields)
    assert ask_b(NEAR, user_id="u") == f"answer for u: {NEAR}"
    assert ask_b.cache_info().semantic_hits == 0


# Configurations that must not read each other's entries: (writer, reader) settings.
# Signing applies to Redis only (the embedded backend is in-process, nothing is signed);
# hash secrets to both (two caches may share one embedded backend).
SIGNING = [
    ({"signing_key": ALICE_KEY}, {"signing_key": "another-signing-key-98765"}),
    ({"signing_key": ALICE_KEY}, {}),
    ({}, {"signing_key": ALICE_KEY}),
]
SECRETS = [
    ({"hash_secret": "secret-one"}, {"hash_secret": "secret-two"}),
    ({"hash_secret": "secret-one"}, {}),
    ({}, {"hash_secret": "secret-one"}),
]
FOREIGN = [("redis", w, r) for w, r in SIGNING] + [
    (kind, w, r) for kind in ("memory", "redis") for w, r in SECRETS
]


def _pair(kind: str, url: str | None, writer: dict[str, Any], reader: dict[str, Any]) -> Any:
    if kind == "memory":
        shared = MemoryBackend()
        settings = {"embedder": "offline", "embedding_dimensions": 64}
        return (
            Cache(CacheConfig(**settings, **writer), backend=shared),
            Cache(CacheConfig(**settings, **reader), backend=shared),
        )
    return make_cache("redis", url, **writer), make_cache("redis", url, **reader)


def _exact(cache: Cache) -> tuple[Any, list[str]]:
    calls: list[str] = []

    @cached(tenant="t", cache=cache)
    def lookup(x: str) -> str:
        calls.append(x)
        return f"value of {x}"

    return lookup, calls


@pytest.mark.parametrize(("backend_kind", "writer", "reader"), FOREIGN)
def test_entries_of_another_configuration_are_never_served(
    backend_kind: str, request: pytest.FixtureRequest, writer: Any, reader: Any
) -> None:
    url = request.getfixturevalue("redis_url") if backend_kind == "redis" else None
    w, r = _pair(backend_kind, url, writer, reader)
    # Exact.
    (get_w, calls_w), (get_r, calls_r) = _exact(w), _exact(r)
    assert get_w("k") == get_w("k") == "value of k" and calls_w == ["k"]  # its own: a hit
    assert get_r("k") == "value of k" and calls_r == ["k"]  # the other's: computed anew
    assert get_r.cache_info().hits == 0
    # Semantic.
    ask_w, ask_r = _ask(w), _ask(r)
    assert ask_w(PROMPT, user_id="u") == f"answer for u: {PROMPT}"
    assert ask_w(NEAR, user_id="u") == f"answer for u: {PROMPT}"  # its own: a hit
    assert ask_w.cache_info().semantic_hits == 1
    assert ask_r(NEAR, user_id="u") == f"answer for u: {NEAR}"
    assert ask_r.cache_info().semantic_hits == 0


def test_same_configuration_still_shares(redis_url: str) -> None:
    one = make_cache("redis", redis_url, signing_key=ALICE_KEY, hash_secret="s1")
    two = make_cache("redis", redis_url, signing_key=ALICE_KEY, hash_secret="s1")
    ask_1, ask_2 = _ask(one), _ask(two)
    ask_1(PROMPT, user_id="u")
    assert ask_2(PROMPT, user_id="u") == f"answer for u: {PROMPT}"
    assert ask_2(NEAR, user_id="u") == f"answer for u: {PROMPT}"
    info = ask_2.cache_info()
    assert (info.hits, info.semantic_hits, info.corrupt) == (1, 1, 0)
