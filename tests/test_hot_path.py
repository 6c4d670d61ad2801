"""The inlined hit path of a plain function called positionally (`_memo._Memo.call`)
keeps every guard of the general path once it is warm: the cache in use (a new default
from `configure()`), a disabled cache, and bypass/refresh/disabled blocks."""

from __future__ import annotations

from typing import Any

import pmm_memo
from pmm_memo import Cache, CacheConfig, bypass, cached, disabled, refresh

runs: list[tuple[str, int]] = []


def _counted(name: str, n: int) -> str:
    runs.append((name, n))
    return f"{name}:{n}:{len(runs)}"


def test_warm_hit_path_keeps_its_guards() -> None:
    cache = Cache(CacheConfig())
    f = cached(tenant="hot", cache=cache)(_counted)
    runs.clear()
    first = f("a", 1)
    assert f("a", 1) == first and len(runs) == 1  # warm: a hit
    with bypass():
        assert f("a", 1) != first  # computed, not read
    with refresh():
        fresh = f("a", 1)
    assert fresh != first and f("a", 1) == fresh  # overwritten, then read
    with disabled():
        before = f.cache_info()
        f("a", 1)
        assert f.cache_info() == before  # transparent: nothing counted
    assert f("a", 2) != f("a", 1)  # another argument, another key
    assert f("a", 1) == fresh


def test_disabled_cache_is_never_read_or_written() -> None:
    pmm_memo.configure(CacheConfig())
    try:
        f = cached(tenant="hot")(_counted)
        f("b", 1)  # warm with an enabled cache
        cache = pmm_memo.configure(CacheConfig(enabled=False))
        f.cache_info()  # binds the function to the disabled cache, as a hit would
        runs.clear()
        f("b", 1)
        f("b", 1)
        assert len(runs) == 2
        assert cache.backend.count("hot") == 0
        assert f.cache_info().hits == 0
    finally:
        pmm_memo.configure()


def test_new_default_cache_is_used_at_once() -> None:
    pmm_memo.configure(CacheConfig())
    try:
        f = cached(tenant="hot")(_counted)
        runs.clear()
        f("c", 1)
        f("c", 1)
        assert len(runs) == 1
        pmm_memo.configure(CacheConfig())  # a new, empty default cache
        f("c", 1)
        assert len(runs) == 2  # not served from the old cache's entry
        f("c", 1)
        assert len(runs) == 2
    finally:
        pmm_memo.configure()


def test_a_long_str_followed_by_another_type_is_cached_not_raised() -> None:
    """A list holding a str of 1,024+ characters and then a non-str (was: AttributeError
    raised to the caller from the hot path's encoder) or a str subclass (was: encoded
    as a plain str, the key of another call)."""

    class Name(str):
        pass

    cache = Cache(CacheConfig())
    calls: list[Any] = []

    @cached(tenant="t", cache=cache)
    def f(x: list[Any]) -> int:
        calls.append(x)
        return len(x)

    long = "x" * 1100
    assert f([long, 5]) == 2 and f([long, 5]) == 2
    assert f([long, "a"]) == 2 and f([long, Name("a")]) == 2
    assert len(calls) == 3 and f.cache_info().hits == 1
    cache.close()
