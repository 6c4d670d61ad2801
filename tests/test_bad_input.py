"""Hostile and mistaken input, one row per case: the expected outcome is a clear error
naming the problem, or a call that passes through with the right result.

(Garbage CACHE_* values are the table in test_config.py; an index with another schema is
in backends/test_redis_index.py.)"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pmm_memo import (
    Cache,
    CacheManager,
    ConfigError,
    EmbeddingError,
    UnencodableArgumentError,
    cached,
    semantic_lookup,
)
from tests.conftest import make_cache

OK = "passes"


def decorate(**options: Any) -> Callable[[], Any]:
    def action() -> Any:
        @cached(**options)
        def f(prompt: str, user_id: str | None = None) -> str:
            return f"ok:{prompt}"

        return f("x")

    return action


def semantic(threshold: Any, **options: Any) -> Callable[[], Any]:
    return lambda: semantic_lookup(threshold, **options)(lambda prompt: prompt)


DECORATION = [
    ("empty tenant", decorate(tenant=""), ConfigError, "non-empty"),
    ("None tenant", decorate(tenant=None), ConfigError, "must be a str"),
    ("int tenant", decorate(tenant=123), ConfigError, "must be a str"),
    ("very long tenant", decorate(tenant="t" * 257), ConfigError, "limit is 256"),
    ("NUL in tenant", decorate(tenant="a\x00b"), ConfigError, "control"),
    ("newline in tenant", decorate(tenant="a\nb"), ConfigError, "control"),
    ("lone surrogate tenant", decorate(tenant="\ud800"), ConfigError, "surrogate"),
    ("glob tenant a*", decorate(tenant="a*"), OK, "ok:x"),
    ("colon tenant a:b", decorate(tenant="a:b"), OK, "ok:x"),
    ("bracket tenant [a]", decorate(tenant="[a]"), OK, "ok:x"),
    ("search-syntax tenant", decorate(tenant="x}|@tenant:{*"), OK, "ok:x"),
    ("comma tenant", decorate(tenant="a,b"), OK, "ok:x"),
    ("unicode tenant", decorate(tenant="ünï 🚀"), OK, "ok:x"),
    ("256-char tenant", decorate(tenant="t" * 256), OK, "ok:x"),
    ("threshold 0", semantic(0), ConfigError, "threshold"),
    ("threshold negative", semantic(-0.5), ConfigError, "threshold"),
    ("threshold above 1", semantic(1.0001), ConfigError, "threshold"),
    ("threshold NaN", semantic(math.nan), ConfigError, "threshold"),
    ("threshold inf", semantic(math.inf), ConfigError, "threshold"),
    ("threshold str", semantic("0.9"), ConfigError, "threshold"),
    ("threshold bool", semantic(True), ConfigError, "threshold"),
    ("ttl 0", decorate(ttl=0), ConfigError, "ttl must be > 0"),
    ("ttl negative", decorate(ttl=-1), ConfigError, "ttl must be > 0"),
    ("ttl NaN", decorate(ttl=math.nan), ConfigError, "ttl must be > 0"),
    ("ttl str", decorate(ttl="10"), ConfigError, "number of seconds"),
    ("ttl 1ms", decorate(ttl=0.001), OK, "ok:x"),
    ("k 0", lambda: semantic_lookup(0.9, k=0)(lambda p: p), ConfigError, "k must be"),
    ("k str", lambda: semantic_lookup(0.9, k="3")(lambda p: p), ConfigError, "k must be"),
    ("ignore unknown parameter", decorate(ignore=("nope",)), ConfigError, "nope"),
    ("text_arg unknown", decorate(text_arg="nope"), ConfigError, "text_arg"),
    ("user_arg unknown", decorate(user_arg="nope"), ConfigError, "user_arg"),
    ("unless not callable", decorate(unless=3), ConfigError, "callable"),
    ("key not callable", decorate(key="k"), ConfigError, "callable"),
]


@pytest.mark.parametrize(
    ("case", "action", "expected", "detail"), DECORATION, ids=[c[0] for c in DECORATION]
)
def test_decoration_time_input(
    case: str, action: Callable[[], Any], expected: Any, detail: str
) -> None:
    if expected is OK:
        assert action() == detail
    else:
        with pytest.raises(expected, match=detail):
            action()


def _recursive() -> list[Any]:
    x: list[Any] = [1]
    x.append(x)
    return x


class _KeyNotAMethod:
    __cache_key__ = "region-eu"  # an attribute where a method belongs


CALLS: list[tuple[str, Any, Any, Any, str]] = [
    # (case, prompt, user, expected, detail)
    ("empty user", "p", "", OK, ""),
    ("user with tag specials", "p", "a,b|c}{", OK, ""),
    ("glob user", "p", "*", OK, ""),
    ("very long user", "p", "u" * 10000, OK, ""),
    ("int user", "p", 42, OK, ""),
    ("unicode prompt", "пароль 🔑", None, OK, ""),
    ("empty prompt", "", None, OK, ""),
    ("1 MB prompt", "word " * 200_000, None, OK, ""),
    ("lone surrogate prompt", "a\ud800b", None, OK, ""),
    ("recursive argument", _recursive(), None, UnencodableArgumentError, "recursive"),
    ("object argument", object(), None, UnencodableArgumentError, "builtins.object"),
    ("lambda argument", lambda: 1, None, UnencodableArgumentError, "function"),
    ("lock argument", threading.Lock(), None, UnencodableArgumentError, "lock"),
    ("generator argument", (i for i in range(3)), None, UnencodableArgumentError, "generator"),
    ("object array argument", np.array([object()]), None, UnencodableArgumentError, "dtype=object"),
    (
        "__cache_key__ not a method",
        _KeyNotAMethod(),
        None,
        UnencodableArgumentError,
        "not a method",
    ),
    ("deeply nested argument", [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]], None, OK, ""),
]


@pytest.mark.parametrize(
    ("case", "prompt", "user", "expected", "detail"), CALLS, ids=[c[0] for c in CALLS]
)
def test_call_time_input(
    cache: Cache, case: str, prompt: Any, user: Any, expected: Any, detail: str
) -> None:
    calls = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: Any, user_id: Any = None) -> str:
        calls.append(1)
        return f"{type(prompt).__name__}:{len(str(prompt))}:{user_id!r}"

    if expected is OK:
        want = f"{type(prompt).__name__}:{len(str(prompt))}:{user!r}"
        assert ask(prompt, user_id=user) == want
        assert ask(prompt, user_id=user) == want
        assert len(calls) == 1  # the second call was a hit
    else:
        with pytest.raises(expected, match=detail):
            ask(prompt, user_id=user)
        assert calls == []  # a bad argument never reaches the function or the cache


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_huge_value_is_returned_not_stored(kind: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    cache = make_cache(kind, url, max_value_bytes=1000)

    @cached(tenant="t", cache=cache)
    def big(n: int) -> str:
        return "v" * n

    assert big(5000) == "v" * 5000
    assert big(5000) == "v" * 5000
    assert big.cache_info().uncacheable == 2 and big.cache_info().hits == 0
    assert big(10) == "v" * 10 and big(10) == "v" * 10 and big.cache_info().hits == 1


VECTORS = [
    (
        "wrong dimension",
        lambda m: m.put_cache("t", None, "k", "x", embedding=np.ones(3)),
        "expected \\(1, 64\\)",
    ),
    ("NaN vector", lambda m: m.knn_search("t", np.full(64, np.nan)), "NaN"),
    ("inf vector", lambda m: m.knn_search("t", np.full(64, np.inf)), "NaN or infinite"),
    ("zero vector", lambda m: m.knn_search("t", np.zeros(64)), "all-zero"),
    ("non-numeric vector", lambda m: m.knn_search("t", ["a"] * 64), "not numbers"),
]


@pytest.mark.parametrize(("case", "action", "detail"), VECTORS, ids=[c[0] for c in VECTORS])
def test_bad_vectors(
    cache: Cache, case: str, action: Callable[[CacheManager], Any], detail: str
) -> None:
    with pytest.raises(EmbeddingError, match=detail):
        action(CacheManager(cache=cache))


class WrongDimEmbedder:
    name, dim, remote = "broken", 64, False

    def embed(self, texts: Any) -> np.ndarray:
        from pmm_memo.embedders import check_vectors

        return check_vectors(np.ones((len(texts), 3)), len(texts), 64, self.name)

    async def aembed(self, texts: Any) -> np.ndarray:
        return self.embed(texts)


def test_embedder_with_wrong_dimension_passes_through(redis_url: str) -> None:
    from pmm_memo import CacheConfig

    cache = Cache(CacheConfig(redis_url=redis_url), embedder=WrongDimEmbedder())

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return prompt * 2

    assert ask("ab") == "abab" and ask("ab") == "abab"
    assert ask.cache_info().errors >= 1 and ask.cache_info().hits == 1


@pytest.mark.parametrize(
    "qualname",
    ["ask\ud800", "ask\x1f\x1f\x00\n", "ask\udcff\x1f" * 2000],
    ids=["surrogate", "separators", "long"],
)
def test_any_function_name_is_cached(cache: Cache, qualname: str) -> None:
    """A name is for people (assigned `__qualname__`s may hold anything, and the stored
    name is the last, free-form part of an entry's `meta`): never an error for the call."""
    calls = []

    def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"ok:{prompt}"

    ask.__qualname__ = qualname
    f = semantic_lookup(threshold=0.8, tenant="t", cache=cache)(ask)
    q = "How do I reset my password on the website?"
    assert f(q) == f(q) == f"ok:{q}" and calls == [q]
    assert f(q + " now") == f"ok:{q}" and calls == [q]  # a semantic hit
    assert f.cache_info().errors == 0


def test_the_table_is_large_enough() -> None:
    assert len(DECORATION) + len(CALLS) + len(VECTORS) + 2 >= 40
