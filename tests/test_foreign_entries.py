"""Entries that are not ours are never served, exact or semantic: moved or relabelled
entries under a signing key, entries written under another CACHE_SIGNING_KEY or
CACHE_HASH_SECRET (or none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from pmm_memo import Cache, CacheConfig, cached, semantic_lookup
from pmm_memo._embedder_id import embedder_tag
from pmm_memo._semantic import prepare
from pmm_memo.backends._entry_meta import SEP, unpack_meta
from pmm_memo.backends.memory import MemoryBackend
from pmm_memo.backends.redis import RedisBackend
from pmm_memo.embedders.offline import OfflineEmbedder
from tests.conftest import make_cache, run
from tests.support.entry_meta import read_meta, write_meta
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
    alice_meta = read_meta(client, alice)
    client.hset(bob, "value", client.hget(alice, "value"))
    envelope = ("fmt", "codec", "checksum", "sig")
    write_meta(client, bob, **{part: getattr(alice_meta, part) for part in envelope})
    assert secret("bob") == "bob's private data"
    assert secret.cache_info().corrupt == 1


def _part(cache: Cache, tenant: str, user: str, fields: dict[bytes, bytes]) -> bytes:
    """The `part` tags (what the KNN filters on) of `fields` moved to tenant/user."""
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    meta = unpack_meta(fields[b"meta"])
    assert meta is not None
    fn, scope = meta.fn.decode(), meta.scope.decode()
    return backend.partitions().tags(tenant, user, fn, scope).encode()


def _relabel_for_bob(
    cache: Cache, client: Any, alice_key: str, bob_scope: bytes, new_key: str
) -> None:
    """Copy alice's entry (value, signature, embedding) to a new key in bob's partition."""
    fields = client.hgetall(alice_key)
    fields[b"user"] = b"bob"
    meta = unpack_meta(fields[b"meta"])
    assert meta is not None
    fields[b"meta"] = SEP.join(meta._replace(scope=bob_scope))
    fields[b"part"] = _part(cache, "t", "bob", fields)  # found by bob's KNN filter
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
    bob_scope = read_meta(client, ask.cache_key("an unrelated question about zebras", "bob")).scope
    assert bob_scope
    _relabel_for_bob(
        cache, client, ask.cache_key(PROMPT, "alice"), bob_scope, "cache:t:" + "ab" * 16
    )
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
    fields[b"part"] = _part(cache, "tenant_b", "u", fields)  # found by tenant_b's filter
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


# -- fields that decide a semantic hit are signed too --------------------------------------
# Someone with write access alters one field of a signed entry so that it would answer a
# call it was never written for. Each scenario first shows that the same forgery fools a
# cache without a signing key (so the forged entry really would be a hit), then that a
# signing cache never serves it, exact or semantic, and that an untouched entry of the
# same configuration still hits.


class _Lookalike(OfflineEmbedder):
    """Another vector space with the same dimensions (an entry must never cross over)."""

    name = "lookalike"


@dataclass
class _Ask:
    """One decorated function (sync or async), called the same way."""

    fn: Any
    use_async: bool

    def __call__(self, prompt: str, user: str) -> str:
        call = self.fn(prompt, user_id=user)
        result: str = run(call) if self.use_async else call
        return result

    def key(self, prompt: str, user: str) -> str:
        key: str = self.fn.cache_key(prompt, user)
        return key

    def info(self) -> Any:
        return self.fn.cache_info()


def _semantic(cache: Cache, threshold: float, use_async: bool) -> _Ask:
    if use_async:

        @semantic_lookup(threshold, tenant="t", cache=cache)
        async def aask(prompt: str, user_id: str = "") -> str:
            return f"answer for {user_id}: {prompt}"

        return _Ask(aask, True)

    @semantic_lookup(threshold, tenant="t", cache=cache)
    def ask(prompt: str, user_id: str = "") -> str:
        return f"answer for {user_id}: {prompt}"

    return _Ask(ask, False)


EUR, USD, EUR200 = "Convert $100 to EUR", "Convert $100 to USD", "Convert $200 to EUR"
ZEBRAS = "an unrelated question about zebras"


def _scenario(field: str, url: str, settings: Any, use_async: bool) -> Any:
    """Write, check the control hit, forge `field`; returns (ask, the forged call's text,
    the answer the forged entry would give, the entry's own text)."""
    threshold = 1.0 if field == "text_h" else 0.8
    reader = make_cache("redis", url, **settings)
    client: Any = reader.backend.client  # type: ignore[attr-defined]  # (or a cluster's)
    writer = reader
    if field == "embedder":
        writer = Cache(
            CacheConfig(redis_url=url, embedding_dimensions=64, **settings),
            embedder=_Lookalike(dim=64),
        )
    ask, write = _semantic(reader, threshold, use_async), _semantic(writer, threshold, use_async)
    # Control: an untouched entry of the same configuration is a semantic hit.
    control_near = "  " + EUR + "\r\n" if threshold == 1.0 else NEAR
    control = write(EUR if threshold == 1.0 else PROMPT, "c")
    assert write(control_near, "c") == control
    assert write.info().semantic_hits == 1
    if field == "text_h":  # the EUR entry claims to be USD's text (a threshold-1.0 hit)
        ask(EUR, "u")
        forged = prepare(USD, 10_000)
        assert forged is not None
        client.hset(ask.key(EUR, "u"), "text_h", forged.digest)
        return ask, USD, f"answer for u: {EUR}", EUR
    if field == "embedder":  # a lookalike space's entry claims to be the reader's
        write(PROMPT, "u")
        # The reader's index exists first: an HSET is then indexed at once (an index
        # created later finds older entries by a background scan).
        ask(ZEBRAS, "c")
        label = reader.embedder_id.label
        key = write.key(PROMPT, "u")
        write_meta(client, key, embedder=label.encode())
        client.hset(key, "emb", embedder_tag(label))
        return ask, NEAR, f"answer for u: {PROMPT}", PROMPT
    if field == "text":  # the guards veto $100 vs $200 unless the text says $200
        ask(EUR, "u")
        client.hset(ask.key(EUR, "u"), "text", EUR200)
        return ask, EUR200, f"answer for u: {EUR}", EUR
    assert field == "embedding"  # the zebra entry gets the vector of another question
    ask(ZEBRAS, "u")
    ask(PROMPT, "m")
    vector = client.hget(ask.key(PROMPT, "m"), "embedding")
    client.hset(ask.key(ZEBRAS, "u"), "embedding", vector)
    return ask, PROMPT, f"answer for u: {ZEBRAS}", ZEBRAS


FORGED_FIELDS = ["text_h", "embedder", "text", "embedding"]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("field", FORGED_FIELDS)
def test_forged_match_field_fools_an_unsigned_cache(
    redis_url: str, field: str, use_async: bool
) -> None:
    """The scenarios below are real: without a signing key the forgery is served."""
    ask, text, forged_answer, _ = _scenario(field, redis_url, {}, use_async)
    assert ask(text, "u") == forged_answer


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("field", FORGED_FIELDS)
@pytest.mark.parametrize("server", ["redis_url", "cluster_url"], ids=["redis", "cluster"])
def test_signed_entry_with_forged_match_field_is_never_served(
    request: pytest.FixtureRequest, server: str, field: str, use_async: bool
) -> None:
    url = request.getfixturevalue(server)
    ask, text, _, own = _scenario(field, url, {"signing_key": ALICE_KEY}, use_async)
    assert ask(text, "u") == f"answer for u: {text}"  # computed, not the forged entry's
    # That fresh entry would be a right semantic hit for `own` (the KNN looks one
    # neighbour past an entry it drops): remove it, the forged entry alone remains.
    ask.fn.invalidate(text, user_id="u")
    # Its own call does not get it either: an altered entry is no entry.
    assert ask(own, "u") == f"answer for u: {own}"
    info = ask.info()
    assert (info.hits, info.semantic_hits) == (0, 0)
    assert info.corrupt >= 1
