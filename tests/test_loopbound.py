"""Event loops come and go: a per-loop client is released when its loop ends.

`asyncio.run()` per request (a sync view calling async code, a Celery task) and loops
closed with `loop.close()` alone must leave memory, loop objects and server connections
flat, checked against the server with INFO clients.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable

import pytest

from pmm_memo import Cache, cached
from tests.conftest import SLOW_MACHINE, make_cache
from tests.support.servers import ValkeyServer


def _connected(server: ValkeyServer, at_most: int | None = None) -> int:
    """Clients connected to the server (INFO clients), not counting this probe. With
    `at_most`, waits up to 5 s for closes in flight to reach the server."""
    probe = server.client()
    try:
        deadline = time.monotonic() + 5.0
        while True:
            count = int(probe.info("clients")["connected_clients"]) - 1
            if at_most is None or count <= at_most or time.monotonic() > deadline:
                return count
            time.sleep(0.05)
    finally:
        probe.close()


def _live_loops() -> int:
    gc.collect()
    return sum(isinstance(o, asyncio.AbstractEventLoop) for o in gc.get_objects())


def _function(cache: Cache) -> Callable[[int], object]:
    @cached(tenant="loops", cache=cache)
    async def f(k: int) -> int:
        return k

    return f


def _run_closed_loop(coro: object) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)  # type: ignore[arg-type]
    finally:
        loop.close()  # no shutdown_asyncgens: the client was never closed on its loop


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["asyncio.run", "loop.close"])
def test_1000_loops_keep_memory_and_connections_flat(
    runner: str, redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url, **SLOW_MACHINE)
    f = _function(cache)
    run: Callable[[object], object] = asyncio.run if runner == "asyncio.run" else _run_closed_loop  # type: ignore[assignment]
    try:
        for i in range(50):
            assert run(f(i % 10)) in (None, i % 10)
        cache.backend.client.ping()  # type: ignore[attr-defined]  # the flusher's connection
        gc.collect()
        before_connections = _connected(search_server)
        before_loops = _live_loops()
        # Memory as allocated blocks (tracemalloc would slow each loop tenfold): before
        # the fix, each kept loop held ~1,000 blocks (+28 MiB over 1,000 loops).
        start = sys.getallocatedblocks()
        for i in range(1000):
            run(f(i % 10))
        gc.collect()
        grown = sys.getallocatedblocks() - start
        assert grown < 20_000, f"{grown} blocks kept over 1,000 loops"
        assert _live_loops() <= before_loops + 1
        assert _connected(search_server, before_connections) <= before_connections
        assert len(cache.backend._aclients) <= 1  # type: ignore[attr-defined]
        info = f.cache_info()  # type: ignore[attr-defined]
        assert (info.errors, info.misses, info.hits) == (0, 10, 1040)
    finally:
        cache.close()
    # Closing the cache also releases the last closed loop's client.
    expected = before_connections - (runner == "loop.close")
    assert _connected(search_server, expected) <= expected


def test_aclose_then_reuse_on_the_same_loop(redis_url: str) -> None:
    cache = make_cache("redis", redis_url)
    f = _function(cache)

    async def main() -> list[object]:
        first = await f(1)
        await cache.aclose()
        return [first, await f(1)]

    try:
        assert asyncio.run(main()) == [1, 1]
        assert len(cache.backend._aclients) == 0  # type: ignore[attr-defined]
    finally:
        cache.close()


def test_current_is_the_running_loops_client_or_none() -> None:
    """The no-await lookup of the async hit path sees only its own loop's client."""
    from pmm_memo._loopbound import LoopBound

    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    async def closer(client: object) -> None:
        return None

    bound: LoopBound[object] = LoopBound(factory, closer)

    async def first() -> None:
        assert bound.current() is None
        client = await bound.get()
        assert bound.current() is client is made[0]

    async def second() -> None:
        assert bound.current() is None  # a new loop: the old loop's client is not seen
        assert await bound.get() is made[1]

    asyncio.run(first())
    asyncio.run(second())
    assert len(bound) == 0
