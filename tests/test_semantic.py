"""@semantic_lookup and embed_key on every backend: hits, thresholds, and isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pmm_memo import Cache, ConfigError, cached, semantic_lookup
from pmm_memo._decorators import DEFAULT_THRESHOLD
from tests.conftest import run, url_for
from tests.support.asks import make_ask

Q = "How do I reset my password?"
NEAR = "how do i reset my password"  # case + punctuation: offline similarity 1.0
REORDERED = "My password: how do I reset it?"
FAR = "What is the capital of France?"


def test_near_duplicate_hits_and_far_misses(cache: Cache) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    first = ask(Q)
    assert ask(NEAR) == first
    assert ask(REORDERED) == first
    assert ask(FAR) != first
    info = ask.cache_info()
    assert (info.semantic_hits, info.misses, info.hits) == (2, 2, 0)
    assert len(calls) == 2
    assert sum(n for _, n in info.similarity_histogram) == 3  # every lookup recorded
    assert ask(NEAR) == first and ask.cache_info().hits == 0  # still semantic, not exact


def test_threshold_is_respected(cache: Cache) -> None:
    calls: list[Any] = []
    strict = make_ask(cache, calls, threshold=1.0)
    strict(Q)
    strict("How do I reset my pasword?")  # a typo: similar, but not 1.0
    assert len(calls) == 2


def test_exact_hit_comes_first(cache: Cache) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    ask(Q)
    ask(Q)
    assert ask.cache_info().hits == 1 and ask.cache_info().semantic_hits == 0


def test_scope_isolation(cache: Cache) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    ask(Q, model="gpt-4o")
    assert ask(NEAR, model="gpt-4o-mini").startswith("gpt-4o-mini")  # other model: miss
    assert ask(NEAR, model="gpt-4o").startswith("gpt-4o/")  # same scope: semantic hit
    assert len(calls) == 2


def test_function_isolation(cache: Cache) -> None:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def summarize(prompt: str) -> str:
        calls.append("summarize")
        return "summary"

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def translate(prompt: str) -> str:
        calls.append("translate")
        return "translation"

    assert summarize(Q) == "summary"
    assert translate(NEAR) == "translation"
    assert calls == ["summarize", "translate"]


ODD = [
    "a-b.c",
    "x}|@tenant:{*",
    "Alice",
    "alice",
    "a,b",
    "a b",
    "ünïcødé 🚀",
    "",
    "a\\b",
    "-1",
    "*",
    "(@user:{x})",
    "a|b",
    "tenant",
]


@pytest.mark.parametrize("tenant", [t for t in ODD if t])
def test_odd_tenants_are_isolated(cache: Cache, tenant: str) -> None:
    calls: list[Any] = []
    ask_a = make_ask(cache, calls, tenant=tenant)
    ask_a(Q)
    for other in ODD:
        if other in ("", tenant):
            continue
        ask_b = make_ask(cache, calls, tenant=other)
        assert ask_b(NEAR) == "m/None: " + NEAR, (tenant, other)
        ask_b.cache_clear()
    assert ask_a(NEAR) == "m/None: " + Q  # its own tenant still hits


@pytest.mark.parametrize("user", ODD)
def test_odd_users_are_isolated(cache: Cache, user: str) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    ask(Q, user_id=user)
    for other in ODD:
        if other == user:
            continue
        assert ask(NEAR, user_id=other) == f"m/{other}: {NEAR}", (user, other)
    assert ask(NEAR, user_id=user) == f"m/{user}: {Q}"
    assert ask(NEAR, user_id=None) == f"m/None: {NEAR}"  # no user is not any user


def test_async_semantic(cache: Cache) -> None:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str, user_id: str | None = None) -> str:
        calls.append(prompt)
        await asyncio.sleep(0)
        return prompt.upper()

    async def main() -> list[str]:
        out = [
            await ask(Q, user_id="u"),
            await ask(NEAR, user_id="u"),
            await ask(NEAR, user_id="v"),
        ]
        await cache.aclose()
        return out

    assert run(main()) == [Q.upper(), Q.upper(), NEAR.upper()]
    assert len(calls) == 2


def test_embed_key_entries_answer_semantic_lookups(cache: Cache) -> None:
    """A @cached(embed_key=True) entry stores its vector; a search finds it."""
    from pmm_memo import CacheManager

    @cached(tenant="t", embed_key=True, cache=cache)
    def complete(prompt: str) -> str:
        return "stored answer"

    complete(Q)
    vector = cache.embedder.embed([NEAR])[0]
    hits = CacheManager(cache=cache).knn_search("t", vector, k=3)
    assert hits and hits[0]["text"] == Q and hits[0]["similarity"] > 0.99
    assert hits[0]["value"] == "stored answer"


def test_long_text_window_is_its_tail(backend_kind: str, request: pytest.FixtureRequest) -> None:
    from tests.conftest import make_cache

    url = url_for(backend_kind, request)
    cache = make_cache(backend_kind, url, max_text_length=50)
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    long_q = "filler words " * 500 + Q
    ask(long_q)
    # The window is the tail (25 to 50 characters, cut where the content says); texts
    # that differ only in its last 20 characters, only in case: a semantic hit.
    ask(long_q[:-20] + long_q[-20:].upper())
    assert len(calls) == 1
    # The same window after another head is never a hit: the head is in the scope.
    ask("other words " + long_q)
    assert len(calls) == 2
    from pmm_memo import CacheManager

    got = CacheManager(cache=cache).get_cache("t", ask.cache_key(long_q))
    assert got is not None and 25 <= len(got["text"]) <= 50 and long_q.endswith(got["text"])


@pytest.mark.parametrize("bad", [0, -0.1, 1.01, float("nan"), "0.9", True, None])
def test_threshold_validated(bad: Any) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        semantic_lookup(threshold=bad)


def test_embeddings_disabled_means_exact_only(
    backend_kind: str, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import make_cache

    url = url_for(backend_kind, request)
    cache = make_cache(backend_kind, url, enable_embeddings=False)
    calls: list[Any] = []
    ask = make_ask(cache, calls)
    ask(Q)
    ask(NEAR)
    ask(Q)
    assert len(calls) == 2 and ask.cache_info().hits == 1


def test_bare_decorator_uses_the_documented_default_threshold() -> None:
    """`@semantic_lookup` without parentheses: the default threshold, on every kind of
    callable."""
    import pmm_memo

    pmm_memo.configure(pmm_memo.CacheConfig(embedder="offline", embedding_dimensions=64))
    try:
        calls: list[str] = []

        @semantic_lookup
        def ask(prompt: str) -> str:
            calls.append(prompt)
            return prompt.upper()

        @semantic_lookup
        async def aask(prompt: str) -> str:
            calls.append(prompt)
            return prompt.lower()

        class Bot:
            @semantic_lookup
            def reply(self, prompt: str) -> str:
                calls.append(prompt)
                return prompt[::-1]

            @semantic_lookup
            @classmethod
            def creply(cls, prompt: str) -> str:
                calls.append(prompt)
                return prompt * 2

            @semantic_lookup
            @staticmethod
            def sreply(prompt: str) -> str:
                calls.append(prompt)
                return prompt + "!"

        assert ask._memo().threshold == DEFAULT_THRESHOLD
        assert ask(Q) == ask(NEAR) == Q.upper()  # similarity 1.0 >= the default: a hit
        assert ask.cache_info().semantic_hits == 1
        assert ask(FAR) == FAR.upper()
        assert run(aask(Q)) == run(aask(NEAR)) == Q.lower()
        assert Bot().reply(Q) == Bot().reply(NEAR) == Q[::-1]
        assert Bot.creply(Q) == Bot().creply(NEAR) == Q * 2
        assert Bot.sreply(Q) == Bot().sreply(NEAR) == Q + "!"
        assert calls == [Q, FAR, Q, Q, Q, Q]
    finally:
        pmm_memo.configure()


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "0.9", None])
def test_bad_threshold_names_the_parameter(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError), match="threshold"):
        semantic_lookup(bad)
