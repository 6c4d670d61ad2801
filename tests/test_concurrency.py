"""Concurrency is load, not an outage: many threads, many tasks, many event loops.

On a healthy server, hundreds of concurrent callers on a cold key set must produce no
counted error, leave the breaker closed, and call the function once per distinct key
(misses == distinct keys): threads, tasks on one loop, and tasks on several loops at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from pmm_memo import Cache, cached
from tests.conftest import SLOW_MACHINE, make_cache, url_for

KEYS = 300


@pytest.fixture
def async_cache(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[Cache]:
    url = url_for(backend_kind, request)
    c = make_cache(backend_kind, url, **SLOW_MACHINE)
    yield c
    c.close()


def _run_threads(n: int, target: object) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def body(i: int) -> None:
        try:
            start.wait()
            target(i)  # type: ignore[operator]
        except BaseException as exc:  # collected: the assertion below names them
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.slow
def test_500_threads_cold_keys(cache: Cache) -> None:
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    @cached(tenant="conc", cache=cache)
    def f(k: int) -> str:
        with lock:
            calls[k] += 1
        return f"v{k}"

    wrong: list[tuple[int, str]] = []

    def caller(i: int) -> None:
        for j in range(6):  # 3,000 calls, every key 10 times, from different threads
            k = (i + j * 50) % KEYS
            got = f(k)
            if got != f"v{k}":
                wrong.append((k, got))

    assert _run_threads(500, caller) == []
    info = f.cache_info()
    assert wrong == []
    assert (info.errors, cache.breaker.is_open) == (0, False)
    assert info.misses == KEYS and set(calls.values()) == {1}
    assert info.hits == 3000 - KEYS


@pytest.mark.slow
def test_2000_tasks_one_loop_cold_keys(async_cache: Cache) -> None:
    cache = async_cache
    calls: Counter[int] = Counter()

    @cached(tenant="conc", cache=cache)
    async def f(k: int) -> str:
        calls[k] += 1
        await asyncio.sleep(0.001)
        return f"v{k}"

    async def caller(i: int) -> list[bool]:
        out = []
        for j in range(3):  # 6,000 calls, every key 20 times
            k = (i + j * 100) % KEYS
            out.append(await f(k) == f"v{k}")
        return out

    async def main() -> list[list[bool]]:
        try:
            return await asyncio.gather(*(caller(i) for i in range(2000)))
        finally:
            await cache.aclose()

    results = asyncio.run(main())
    info = f.cache_info()
    assert all(all(r) for r in results)
    assert (info.errors, cache.breaker.is_open) == (0, False)
    assert info.misses == KEYS and set(calls.values()) == {1}
    assert info.hits == 6000 - KEYS


@pytest.mark.slow
def test_tasks_on_many_loops_at_once_call_once(async_cache: Cache) -> None:
    """8 threads, each with its own event loop and 50 tasks: one call per key in all."""
    cache = async_cache
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    @cached(tenant="conc", cache=cache)
    async def f(k: int) -> str:
        with lock:
            calls[k] += 1
        await asyncio.sleep(0.01)
        return f"v{k}"

    async def loop_body(i: int) -> None:
        try:
            for k in range(40):
                results = await asyncio.gather(*(f(k) for _ in range(50)))
                assert set(results) == {f"v{k}"}
        finally:
            await cache.aclose()

    assert _run_threads(8, lambda i: asyncio.run(loop_body(i))) == []
    info = f.cache_info()
    assert (info.errors, cache.breaker.is_open) == (0, False)
    assert set(calls.values()) == {1} and len(calls) == 40
    assert info.misses == 40


def test_a_caller_whose_miss_raced_a_finished_flight_reads_again(cache: Cache) -> None:
    """The read-then-lead race, made deterministic: the caller's read misses, another
    caller's flight completes and stores, then the first caller leads."""
    calls: list[int] = []

    @cached(tenant="conc", cache=cache)
    def f(k: int) -> int:
        calls.append(k)
        return k

    real_read = cache.read
    raced: list[bool] = []

    def racing_read(*args: object) -> object:
        value = real_read(*args)  # type: ignore[arg-type]
        if not raced:  # the first caller's miss: another caller completes meanwhile
            raced.append(True)
            t = threading.Thread(target=f, args=(1,))
            t.start()
            t.join()
        return value

    cache.read = racing_read  # type: ignore[method-assign]
    assert f(1) == 1
    assert calls == [1]
    assert f.cache_info().misses == 1


@pytest.mark.slow
def test_small_pool_waits_instead_of_failing(redis_url: str) -> None:
    """4 connections for 200 threads: callers queue for a connection; nothing fails and
    the breaker stays closed (pool exhaustion is load, not an outage)."""
    cache = make_cache("redis", redis_url, max_connections=4, pool_timeout=30.0)
    try:

        @cached(tenant="conc", cache=cache)
        def f(k: int) -> int:
            return k

        assert _run_threads(200, lambda i: [f(k) for k in range(i % 20, i % 20 + 5)]) == []
        info = f.cache_info()
        assert (info.errors, cache.breaker.is_open) == (0, False)
        assert info.misses == 24
        assert len(cache.backend.client.connection_pool._connections) <= 4  # type: ignore[attr-defined]
    finally:
        cache.close()


def test_pool_timeout_is_counted_but_never_opens_the_breaker(redis_url: str) -> None:
    cache = make_cache("redis", redis_url, max_connections=1, pool_timeout=0.05)
    try:

        @cached(tenant="conc", cache=cache)
        def f(k: int) -> int:
            return k

        held = cache.backend.client.connection_pool.get_connection()  # type: ignore[attr-defined]
        try:
            assert f(1) == 1  # no connection came free: the function ran, nothing raised
        finally:
            cache.backend.client.connection_pool.release(held)  # type: ignore[attr-defined]
        info = f.cache_info()
        assert info.errors >= 1 and not cache.breaker.is_open
        assert f(1) == f(1) == 1 and f.cache_info().hits == 1  # the cache works right after
    finally:
        cache.close()
