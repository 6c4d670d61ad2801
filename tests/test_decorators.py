"""`@cached` behaviour, run against every backend (memory and real Valkey)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import typing
from typing import Any

import numpy as np
import pytest

import pmm_memo
from pmm_memo import Cache, ConfigError, UnencodableArgumentError, cached
from tests.conftest import run


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)


def test_hit_after_miss_and_binding_equivalence(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", ttl=60, cache=cache)
    def add(a: int, b: int = 2, *, c: int = 3) -> int:
        rec(a, b, c)
        return a + b + c

    assert [add(1), add(1, 2), add(1, b=2), add(a=1), add(1, 2, c=3)] == [6] * 5
    assert len(rec.calls) == 1
    info = add.cache_info()
    assert (info.hits, info.misses) == (4, 1)
    assert info.currsize == 1


def test_one_float_true_are_different_entries(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    def ident(x: Any) -> str:
        rec(x)
        return type(x).__name__

    assert [ident(1), ident(1.0), ident(True)] == ["int", "float", "bool"]
    assert [ident(1), ident(1.0), ident(True)] == ["int", "float", "bool"]
    assert len(rec.calls) == 3


def test_numpy_arguments(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    def total(v: np.ndarray) -> float:
        rec(v)
        return float(v.sum())

    assert total(np.arange(5)) == 10.0
    assert total(np.arange(5)) == 10.0
    assert total(np.arange(5, dtype=np.float32)) == 10.0
    assert len(rec.calls) == 2


def test_none_is_cached_and_exceptions_are_not(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    def maybe(x: int) -> int | None:
        rec(x)
        if x < 0:
            raise ValueError("negative")
        return None

    assert maybe(1) is None
    assert maybe(1) is None
    assert len(rec.calls) == 1
    for _ in range(2):
        with pytest.raises(ValueError, match="negative"):
            maybe(-1)
    assert len(rec.calls) == 3


def test_async_function_hits(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    async def fetch(q: str) -> dict[str, Any]:
        rec(q)
        await asyncio.sleep(0)
        return {"q": q, "n": [1, 2]}

    assert inspect.iscoroutinefunction(fetch)
    assert run(fetch("a")) == {"q": "a", "n": [1, 2]}
    assert run(fetch("a")) == {"q": "a", "n": [1, 2]}
    assert len(rec.calls) == 1
    assert fetch.cache_info().hits == 1
    run(cache.aclose())


def test_methods_share_entries_across_instances(cache: Cache) -> None:
    rec = Recorder()

    class Repo:
        @cached(tenant="t", cache=cache)
        def load(self, ident: int) -> str:
            rec(ident)
            return f"row{ident}"

        @classmethod
        @cached(tenant="t", cache=cache)
        def make(cls, n: int) -> int:
            rec(("make", n))
            return n

        @staticmethod
        @cached(tenant="t", cache=cache)
        def pure(n: int) -> int:
            rec(("pure", n))
            return n

    a, b = Repo(), Repo()
    assert a.load(1) == b.load(1) == Repo.load(a, 1) == "row1"
    assert Repo.make(2) == a.make(2) == 2
    assert Repo.pure(3) == a.pure(3) == 3
    assert len(rec.calls) == 3
    assert a.load.cache_key(1) == Repo.load.cache_key(b, 1)


def test_cache_key_override_on_self(cache: Cache) -> None:
    rec = Recorder()

    class Client:
        def __init__(self, region: str) -> None:
            self.region = region

        def __cache_key__(self) -> str:
            return self.region

        @cached(tenant="t", cache=cache)
        def price(self, item: str) -> str:
            rec(self.region, item)
            return f"{self.region}:{item}"

    assert Client("eu").price("x") == "eu:x"
    assert Client("us").price("x") == "us:x"
    assert Client("eu").price("x") == "eu:x"
    assert len(rec.calls) == 2


def test_wrapper_keeps_identity_and_hints(cache: Cache) -> None:
    @cached(tenant="t", cache=cache)
    def complete(prompt: str, model: str = "m") -> str:
        """Doc."""
        return prompt

    assert complete.__name__ == "complete"
    assert complete.__doc__ == "Doc."
    assert inspect.signature(complete) == inspect.signature(complete.__wrapped__)
    assert list(inspect.signature(complete).parameters) == ["prompt", "model"]
    assert typing.get_type_hints(complete) == {"prompt": str, "model": str, "return": str}
    assert complete.__wrapped__("x") == "x"
    assert complete.cache_key("x").startswith("cache:t:")
    assert len(complete.cache_key("x").split(":")[-1]) == 32


def test_invalidate_refresh_bypass_disabled(cache: Cache) -> None:
    counter = iter(range(100))

    @cached(tenant="t", cache=cache)
    def tick(x: int) -> int:
        return next(counter)

    assert tick(1) == 0
    assert tick(1) == 0
    with pmm_memo.bypass():
        assert tick(1) == 1  # computed, not read...
    assert tick(1) == 0  # ...and not written
    with pmm_memo.refresh():
        assert tick(1) == 2  # recomputed and overwritten
    assert tick(1) == 2
    assert tick.invalidate(1) is True
    assert tick.invalidate(1) is False
    assert tick(1) == 3
    with pmm_memo.disabled():
        assert tick(1) == 4
        assert tick(1) == 5
    assert tick(1) == 3


def test_context_modes_follow_async_tasks(cache: Cache) -> None:
    counter = iter(range(100))

    @cached(tenant="t", cache=cache)
    async def tick(x: int) -> int:
        return next(counter)

    async def main() -> list[int]:
        first = await tick(1)

        async def refreshed() -> int:
            with pmm_memo.refresh():
                return await tick(1)

        second = await asyncio.create_task(refreshed())
        third = await tick(1)
        await cache.aclose()
        return [first, second, third]

    assert run(main()) == [0, 1, 1]


def test_env_disabled_is_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_ENABLED", "false")
    pmm_memo.configure()
    try:
        rec = Recorder()

        @cached(tenant="t")
        def f(x: Any) -> Any:
            rec(x)
            return x

        f(object())  # not even encoded
        f(1)
        f(1)
        assert len(rec.calls) == 3
    finally:
        monkeypatch.delenv("CACHE_ENABLED")
        pmm_memo.configure()


def test_ignore_version_key_unless(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache, ignore=("client",), unless=lambda r: r == "bad")
    def ask(q: str, client: object = None) -> str:
        rec(q)
        return "bad" if q == "x" else q.upper()

    assert ask("a", object()) == ask("a", object()) == "A"
    assert ask("x") == ask("x") == "bad"
    assert len(rec.calls) == 3  # "bad" was never stored

    @cached(tenant="t", cache=cache, key=lambda q, client=None: q.lower())
    def folded(q: str, client: object = None) -> str:
        rec(q)
        return q

    assert folded("Hi") == folded("HI") == "Hi"

    @cached(tenant="t", cache=cache, version="2")
    def v2(q: str) -> str:
        return q

    assert v2.cache_key("a") != cached(tenant="t", cache=cache)(v2.__wrapped__).cache_key("a")


def test_unencodable_argument_raises_clearly(cache: Cache) -> None:
    @cached(tenant="t", cache=cache)
    def f(conn: Any, q: str) -> str:
        return q

    with pytest.raises(UnencodableArgumentError, match=r"'conn'.*_thread\.lock"):
        f(threading.Lock(), "x")
    with pytest.raises(TypeError):
        f("only one")  # the function's own TypeError


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("tenant", "", "non-empty"),
        ("tenant", 5, "tenant must be a str"),
        ("tenant", "a\nb", "control"),
        ("tenant", "x" * 300, "limit"),
        ("ttl", 0, "ttl must be > 0"),
        ("ttl", -1, "ttl must be > 0"),
        ("ttl", float("inf"), "ttl must be > 0"),
        ("ttl", "60", "number of seconds"),
        ("ttl", True, "number of seconds"),
        ("ignore", ("nope",), "no parameter 'nope'"),
        ("text_arg", "nope", "text_arg='nope'"),
        ("unless", "x", "unless must be callable"),
    ],
)
def test_bad_options_rejected_at_decoration(option: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cached(**{option: value})(lambda prompt: prompt)


def test_cache_clear_only_this_function(cache: Cache) -> None:
    @cached(tenant="t", cache=cache)
    def one(x: int) -> int:
        return x

    @cached(tenant="t", cache=cache)
    def two(x: int) -> int:
        return x

    for i in range(5):
        one(i)
        two(i)
    assert one.cache_clear() == 5
    assert one.cache_info().currsize == 0
    assert two.cache_info().currsize == 5


def test_single_flight_threads(cache: Cache) -> None:
    rec = Recorder()
    gate = threading.Event()

    @cached(tenant="t", cache=cache)
    def slow(x: int) -> int:
        rec(x)
        gate.wait(5)
        return x * 10

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [70] * 20
    assert len(rec.calls) == 1


def test_single_flight_tasks_share_exceptions(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    async def boom(x: int) -> int:
        rec(x)
        # Long enough for every task's cache read to finish first: 50 ms was once too
        # short for ten first reads on the cluster on a loaded machine (a second call).
        await asyncio.sleep(0.5)
        raise RuntimeError("once")

    async def main() -> list[BaseException | int]:
        out = await asyncio.gather(*(boom(1) for _ in range(10)), return_exceptions=True)
        await cache.aclose()
        return out

    results = run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(rec.calls) == 1


def test_async_leader_cancelled_waiters_recompute(cache: Cache) -> None:
    rec = Recorder()

    @cached(tenant="t", cache=cache)
    async def slow(x: int) -> int:
        rec(x)
        await asyncio.sleep(0.1)
        return x

    async def main() -> int:
        leader = asyncio.create_task(slow(1))
        while not rec.calls:  # the leader is computing (a cluster client connects first)
            await asyncio.sleep(0.005)
        waiter = asyncio.create_task(slow(1))
        await asyncio.sleep(0.01)
        leader.cancel()
        result = await waiter
        await cache.aclose()
        return result

    assert run(main()) == 1
    assert len(rec.calls) == 2


def test_configure_sets_default_cache() -> None:
    c = pmm_memo.configure(pmm_memo.CacheConfig(default_ttl=5, embedder="offline"))
    try:
        assert pmm_memo.default_cache() is c
        with pytest.raises(TypeError):
            pmm_memo.configure(pmm_memo.CacheConfig(), default_ttl=3)  # type: ignore[call-arg]
        c2 = pmm_memo.configure(default_ttl=7)
        assert c2.config.default_ttl == 7
    finally:
        pmm_memo.configure()
