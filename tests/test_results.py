"""Results that are not values (generators, iterators, coroutines): never stored, never
shared, the same on every backend; generator functions are refused at decoration."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pmm_memo import Cache, cached, semantic_lookup
from pmm_memo._results import one_shot_kind
from tests.conftest import run


def gen_fn(n: int) -> Iterator[int]:
    yield from range(n)


async def agen_fn(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@pytest.mark.parametrize("target", [gen_fn, agen_fn], ids=["generator", "async generator"])
@pytest.mark.parametrize(
    "decorator",
    [cached, cached(tenant="t"), semantic_lookup(0.9)],
    ids=["cached", "cached()", "semantic_lookup"],
)
def test_generator_functions_are_refused_at_decoration(target: Any, decorator: Any) -> None:
    with pytest.raises(TypeError, match=r"generator function.*list\("):
        decorator(target)


def test_generator_methods_are_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="generator function"):

        class A:
            @cached
            def items(self) -> Iterator[int]:
                yield 1

    with pytest.raises(TypeError, match="generator function"):

        class B:
            @cached
            @classmethod
            def items(cls) -> Iterator[int]:
                yield 1


class _Counting:
    """An iterator class of our own (not a generator): still one-shot."""

    def __init__(self, n: int) -> None:
        self.i, self.n = 0, n

    def __iter__(self) -> _Counting:
        return self

    def __next__(self) -> int:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i - 1


# (name, function returning a one-shot object for n, how to consume it into a list)
def _consume_sync(obj: Any) -> list[int]:
    return list(obj)


SYNC_RETURNS: list[tuple[str, Callable[[int], Any]]] = [
    ("generator", lambda n: (i for i in range(n))),
    ("list iterator", lambda n: iter(list(range(n)))),
    ("map", lambda n: map(int, range(n))),
    ("zip", lambda n: (x for (x,) in zip(range(n), strict=True))),
    ("own iterator class", _Counting),
]


@pytest.mark.parametrize(("name", "make"), SYNC_RETURNS, ids=[r[0] for r in SYNC_RETURNS])
def test_returned_iterators_are_returned_uncached(
    cache: Cache, name: str, make: Callable[[int], Any]
) -> None:
    calls = []

    @cached(tenant="t", cache=cache)
    def f(n: int) -> Any:
        calls.append(n)
        return make(n)

    assert _consume_sync(f(3)) == [0, 1, 2]
    assert _consume_sync(f(3)) == [0, 1, 2]  # not an exhausted object from the cache
    assert len(calls) == 2
    info = f.cache_info()
    assert info.uncacheable == 2 and info.hits == 0 and info.currsize == 0


def test_sync_function_returning_a_coroutine(cache: Cache) -> None:
    async def work(n: int) -> int:
        return n * 2

    @cached(tenant="t", cache=cache)
    def f(n: int) -> Any:
        return work(n)

    async def main() -> list[int]:
        return [await f(2), await f(2)]

    assert run(main()) == [4, 4]  # no "cannot reuse already awaited coroutine"
    assert f.cache_info().uncacheable == 2 and f.cache_info().currsize == 0


@pytest.mark.parametrize("kind", ["coroutine", "async generator", "future"])
def test_async_function_returning_one_shot_objects(cache: Cache, kind: str) -> None:
    async def work(n: int) -> int:
        return n * 2

    async def agen(n: int) -> AsyncIterator[int]:
        yield n * 2

    @cached(tenant="t", cache=cache)
    async def f(n: int) -> Any:
        if kind == "coroutine":
            return work(n)
        if kind == "async generator":
            return agen(n)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(n * 2)
        return fut

    async def consume(obj: Any) -> int:
        if kind == "async generator":
            (only,) = [x async for x in obj]
            return int(only)
        return int(await obj)

    async def main() -> list[int]:
        return [await consume(await f(2)), await consume(await f(2))]

    assert run(main()) == [4, 4]
    assert run(main()) == [4, 4]  # a fresh event loop per request, as in production
    info = f.cache_info()
    assert info.uncacheable == 4 and info.currsize == 0


def test_concurrent_callers_never_share_one_iterator(cache: Cache) -> None:
    # Single-flight hands waiters the leader's result: for an iterator that would split
    # one stream between callers. Each caller must get a whole iterator of its own.
    @cached(tenant="pmm_llm", cache=cache)  # pmm_llm: the cross-process lock is on too
    def f(n: int) -> Iterator[int]:
        time.sleep(0.2)
        return iter(list(range(n)))

    results: list[list[int]] = []
    lock = threading.Lock()

    def worker() -> None:
        got = list(f(5))
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[0, 1, 2, 3, 4]] * 8
    assert f.cache_info().currsize == 0


def test_concurrent_tasks_never_share_one_async_generator(cache: Cache) -> None:
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @cached(tenant="t", cache=cache)
    async def f(n: int) -> Any:
        await asyncio.sleep(0.1)
        return agen(n)

    async def one() -> list[int]:
        return [x async for x in await f(4)]

    async def main() -> list[list[int]]:
        return list(await asyncio.gather(*(one() for _ in range(6))))

    assert run(main()) == [[0, 1, 2, 3]] * 6


def test_values_are_still_cached_alongside(cache: Cache) -> None:
    calls = []

    @cached(tenant="t", cache=cache)
    def f(n: int) -> list[int]:
        calls.append(n)
        return list(range(n))

    assert f(3) == f(3) == [0, 1, 2]
    assert len(calls) == 1 and f.cache_info().uncacheable == 0


@pytest.mark.parametrize(
    ("value", "one_shot"),
    [
        ([1], False),
        ("s", False),
        (None, False),
        (range(3), False),  # re-iterable, a value
        ({"a": 1}.items(), False),  # a view, re-iterable
        (iter(range(3)), True),
        (enumerate([1]), True),
        (reversed([1, 2]), True),
        (filter(None, [1]), True),
    ],
)
def test_one_shot_kind_table(value: Any, one_shot: bool) -> None:
    assert (one_shot_kind(value) is not None) is one_shot
