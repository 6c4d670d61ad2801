"""Bad options: a clear ConfigError naming the option, never a silent misreading
(`ignore="client"` split into characters) or an error type unlike the others'."""

from __future__ import annotations

from typing import Any

import pytest

import pmm_memo
from pmm_memo import Cache, ConfigError, cached, semantic_lookup


@pytest.mark.parametrize("decorator", [cached, semantic_lookup])
def test_a_single_name_is_one_name(cache: Cache, decorator: Any) -> None:
    options: dict[str, Any] = {"tenant": "t", "cache": cache}
    if decorator is semantic_lookup:
        options["threshold"] = 0.9

    def ask(client: object, prompt: str) -> str:
        return prompt.upper()

    f = decorator(ignore="client", **options)(ask)
    assert f(object(), "hi") == "HI"
    assert f(object(), "hi") == "HI" and f.cache_info().hits == 1  # client ignored
    assert f.cache_key(object(), "hi") == f.cache_key(None, "hi")


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        (5, "ignore must be a parameter name or a tuple of names, got int"),
        (("client", 3), "names must be str, got 3"),
        ("nope", "has no parameter 'nope'"),
    ],
)
def test_bad_ignore_is_a_config_error(ignore: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cached(ignore=ignore)(lambda client, x: x)


def test_unknown_guard_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown guard 'number': choose from numbers"):
        semantic_lookup(0.9, guards=("number",))
    assert semantic_lookup(0.9, guards="numbers")  # one name as a str


def test_configure_takes_a_mapping() -> None:
    try:
        c = pmm_memo.configure({"default_ttl": 7, "embedder": "offline"})
        assert c.config.default_ttl == 7
        c = pmm_memo.configure({"default_ttl": 7}, default_ttl=9)  # keywords win
        assert c.config.default_ttl == 9
        with pytest.raises(ConfigError, match="unknown CacheConfig setting"):
            pmm_memo.configure({"bogus": 1})
        with pytest.raises(ConfigError, match="redis_url"):
            pmm_memo.configure({"redis_url": "localhost:6379"})
        with pytest.raises(TypeError, match="a mapping of settings"):
            pmm_memo.configure(5)  # type: ignore[arg-type]
    finally:
        pmm_memo.configure()


def test_a_ttl_redis_cannot_hold_is_refused_and_the_longest_one_works(redis_url: str) -> None:
    """`ttl=sys.maxsize` ("forever") failed every write on Redis, and left the hash
    written without its expiry; the embedded backend took it."""
    import sys

    from pmm_memo import CacheConfig
    from pmm_memo._validate import MAX_TTL_SECONDS

    for huge in (sys.maxsize, 1e30, MAX_TTL_SECONDS + 1):
        with pytest.raises(ConfigError, match="ttl must be at most"):
            cached(tenant="t", ttl=huge)(lambda x: x)
        with pytest.raises(ConfigError, match="CACHE_DEFAULT_TTL"):
            CacheConfig(default_ttl=int(huge))
    cache = Cache(CacheConfig(redis_url=redis_url, embedder="offline", embedding_dimensions=8))
    try:

        @cached(tenant="t", ttl=MAX_TTL_SECONDS, cache=cache)
        def f(x: int) -> int:
            return x

        assert f(1) == 1 and f(1) == 1
        assert f.cache_info().hits == 1 and f.cache_info().errors == 0
        pttl = cache.backend.client.pttl(f.cache_key(1))  # type: ignore[attr-defined]
        assert MAX_TTL_SECONDS * 1000 - 60_000 < pttl <= MAX_TTL_SECONDS * 1000
    finally:
        cache.close()


NOT_A_CACHE = r"cache must be a pmm_memo\.Cache"


@pytest.mark.parametrize("given", ["redis://127.0.0.1:6379/0", {"redis_url": None}])
def test_a_cache_that_is_not_a_cache_is_named_at_once(given: Any) -> None:
    """A URL or a dict where a Cache or CacheConfig belongs: every call (and every
    LangChain lookup, from inside its error handler) raised "'str' object has no
    attribute 'enabled'", or the constructor did."""
    from pmm_memo import CacheConfig, CacheManager
    from pmm_memo.integrations import openai as integration
    from pmm_memo.integrations.langchain import PmmMemoCache

    with pytest.raises(ConfigError, match=NOT_A_CACHE):
        cached(cache=given)(lambda x: x)
    with pytest.raises(ConfigError, match=NOT_A_CACHE):
        semantic_lookup(0.9, cache=CacheConfig())(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=NOT_A_CACHE):
        PmmMemoCache(cache=given)
    with pytest.raises(ConfigError, match=NOT_A_CACHE):
        integration.instrument(cache=given)
    for make in (Cache, CacheManager):
        with pytest.raises(TypeError, match=r"takes a CacheConfig.*got (str|dict)"):
            make(given)
