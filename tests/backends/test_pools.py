"""The pools' free path (an idle connection, nobody queued) on a real server: it skips
redis-py's waiting machinery, and never at the cost of what that machinery guarantees —
queued callers keep their turn, a connection with a reply left over is never handed out,
an exhausted pool still waits and then raises PoolTimeoutError (see `_pools`)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from pmm_memo import cached
from pmm_memo.backends._pools import AsyncBlockingPool, BlockingPool, PoolTimeoutError
from tests.conftest import make_cache, run

FIELDS = ("fmt", "value")


def _sync_pool(url: str, size: int, wait: float = 5.0) -> BlockingPool:
    pool: BlockingPool = BlockingPool.from_url(
        url,
        max_connections=size,
        timeout=wait,
        protocol=2,  # as the backend's pools
    )
    return pool


def _async_pool(url: str, size: int, wait: float = 5.0) -> AsyncBlockingPool:
    pool: AsyncBlockingPool = AsyncBlockingPool.from_url(
        url, max_connections=size, timeout=wait, protocol=2
    )
    return pool


def test_an_idle_sync_pool_hands_out_connections_without_redis_pys_wait(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_pool(_sync_pool(redis_url, 4))
    client.hset("pool:k", mapping={"fmt": "1", "value": "v"})
    waits: list[int] = []
    full_path = redis.BlockingConnectionPool.get_connection

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        waits.append(1)
        return full_path(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(redis.BlockingConnectionPool, "get_connection", counted)
    assert [client.hmget("pool:k", FIELDS) for _ in range(20)] == [[b"1", b"v"]] * 20
    assert waits == []  # the connection made for the HSET is reused on the free path
    client.close()


def test_an_idle_async_pool_never_enters_the_condition(redis_url: str) -> None:
    async def main() -> int:
        client = redis.asyncio.Redis.from_pool(_async_pool(redis_url, 4))
        await client.hset("pool:k", mapping={"fmt": "1", "value": "v"})
        pool: Any = client.connection_pool
        entered: list[int] = []
        acquire = pool._condition.acquire

        async def counted() -> bool:
            entered.append(1)
            return bool(await acquire())

        pool._condition.acquire = counted
        for _ in range(20):
            assert await client.hmget("pool:k", FIELDS) == [b"1", b"v"]
        await client.aclose()
        return len(entered)

    assert run(main()) == 0


def test_a_connection_with_an_unread_reply_is_never_handed_out(redis_url: str) -> None:
    """A connection given back with a reply still in flight (as after an interrupted
    command) is reconnected by the full path, never served: the next command would
    otherwise read the old reply as its own."""
    client = redis.Redis.from_pool(_sync_pool(redis_url, 1))
    client.set("pool:a", "A")
    client.set("pool:b", "B")
    pool = client.connection_pool
    conn = pool.get_connection()
    conn.send_command("GET", "pool:a")  # type: ignore[no-untyped-call]  # reply never read
    time.sleep(0.05)  # it arrives in the socket's buffer
    pool.release(conn)
    assert client.get("pool:b") == b"B"
    client.close()

    async def main() -> Any:
        aclient = redis.asyncio.Redis.from_pool(_async_pool(redis_url, 1))
        apool = aclient.connection_pool
        aconn = await apool.get_connection()  # type: ignore[no-untyped-call]
        await aconn.send_command("GET", "pool:a")
        await asyncio.sleep(0.05)  # the reply arrives in the connection's buffer
        await apool.release(aconn)
        value = await aclient.get("pool:b")
        await aclient.aclose()
        return value

    assert run(main()) == b"B"


def test_an_idle_plain_connection_is_checked_by_one_poll(redis_url: str) -> None:
    """On a plain socket with redis-py's own parser, the free path asks the socket once
    (poll) whether anything is left to read, not redis-py's `can_read` (three system
    calls and a raised and caught BlockingIOError per command)."""
    client = redis.Redis.from_pool(_sync_pool(redis_url, 1))
    client.set("pool:a", "A")
    pool = client.connection_pool
    conn = pool.get_connection()
    pool.release(conn)
    asked: list[int] = []
    can_read = conn.can_read

    def counted(*args: Any) -> Any:
        asked.append(1)
        return can_read(*args)

    conn.can_read = counted  # type: ignore[method-assign]
    assert [client.get("pool:a") for _ in range(5)] == [b"A"] * 5
    assert asked == []
    client.close()


def test_a_reply_already_in_the_parsers_buffer_is_never_handed_out(redis_url: str) -> None:
    """Two replies read from the socket in one recv, one taken: the other waits in
    redis-py's parser buffer, where a poll of the socket cannot see it."""
    client = redis.Redis.from_pool(_sync_pool(redis_url, 1))
    client.set("pool:a", "A")
    client.set("pool:b", "B")
    pool = client.connection_pool
    conn = pool.get_connection()
    conn.send_packed_command(conn.pack_commands([("GET", "pool:a"), ("GET", "pool:b")]))
    time.sleep(0.05)  # both replies arrive; the first read takes both into the buffer
    assert conn.read_response() == b"A"
    assert conn._parser._buffer.unread_bytes() > 0  # the second one, unread
    pool.release(conn)
    assert [client.get("pool:a"), client.get("pool:b")] == [b"A", b"B"]
    client.close()


def test_a_connection_the_server_closed_is_reconnected(redis_url: str) -> None:
    client = redis.Redis.from_pool(_sync_pool(redis_url, 1))
    client.set("pool:a", "A")
    redis.Redis.from_url(redis_url).client_kill_filter(_type="normal", skipme=True)
    time.sleep(0.05)  # the close reaches the pooled socket
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command("GET", "pool:a")  # type: ignore[no-untyped-call]
        assert conn.read_response() == b"A"  # a new socket: the dead one was never reused
    finally:
        client.connection_pool.release(conn)
    client.close()


def test_queued_tasks_keep_their_turn(redis_url: str) -> None:
    """A task that queued for a connection gets the next one given back; a newcomer
    arriving at that moment does not take it on the free path."""

    async def main() -> list[str]:
        pool = _async_pool(redis_url, 1)
        order: list[str] = []
        held = await pool.get_connection()

        async def take(name: str) -> None:
            conn = await pool.get_connection()
            order.append(name)
            await asyncio.sleep(0.01)
            await pool.release(conn)

        queued = asyncio.create_task(take("queued"))
        await asyncio.sleep(0.05)  # it waits on the Condition now
        await pool.release(held)
        newcomer = asyncio.create_task(take("newcomer"))
        await asyncio.gather(queued, newcomer)
        await pool.disconnect()
        return order

    assert run(main()) == ["queued", "newcomer"]


def test_an_exhausted_pool_still_waits_then_raises_pool_timeout(redis_url: str) -> None:
    pool = _sync_pool(redis_url, 1, wait=0.1)
    held = pool.get_connection()
    with pytest.raises(PoolTimeoutError):
        pool.get_connection()
    freed = threading.Timer(0.05, pool.release, args=(held,))
    pool.timeout = 5.0
    freed.start()
    assert pool.get_connection() is held  # a waiting thread is woken by a release
    pool.disconnect()

    async def main() -> bool:
        apool = _async_pool(redis_url, 1, wait=0.1)
        aheld = await apool.get_connection()
        with pytest.raises(PoolTimeoutError):
            await apool.get_connection()
        apool.timeout = 5.0
        asyncio.get_running_loop().call_later(0.05, asyncio.ensure_future, apool.release(aheld))
        same = await apool.get_connection() is aheld
        await apool.disconnect()
        return same

    assert run(main())


@pytest.mark.parametrize("size", [1, 3])
def test_many_async_callers_on_a_small_pool(redis_url: str, size: int) -> None:
    cache = make_cache("redis", redis_url, max_connections=size, pool_timeout=30.0)

    @cached(tenant="pools", cache=cache)
    async def f(k: int) -> int:
        return k * 2

    async def main() -> list[int]:
        out = await asyncio.gather(*(f(i % 10) for i in range(300)))
        pool: Any = (await cache.backend.aclient()).connection_pool  # type: ignore[attr-defined]
        assert len(pool._available_connections) + len(pool._in_use_connections) <= size
        await cache.aclose()
        return list(out)

    try:
        assert run(main()) == [(i % 10) * 2 for i in range(300)]
        info = f.cache_info()
        assert (info.errors, info.misses, cache.breaker.is_open) == (0, 10, False)
    finally:
        cache.close()


@pytest.mark.parametrize("size", [1, 2])
def test_many_threads_on_a_small_sync_pool(redis_url: str, size: int) -> None:
    """Threads queued in redis-py's blocking get are woken by free-path releases: every
    call completes well inside the pool timeout, never a PoolTimeoutError."""
    cache = make_cache("redis", redis_url, max_connections=size, pool_timeout=5.0)

    @cached(tenant="pools", cache=cache)
    def f(k: int) -> int:
        return k * 2

    out: dict[int, int] = {}

    def worker(n: int) -> None:
        for i in range(40):
            out[n * 40 + i] = f((n + i) % 10)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert time.monotonic() - started < 5.0  # no caller waited out a pool timeout
        assert out == {n * 40 + i: ((n + i) % 10) * 2 for n in range(24) for i in range(40)}
        info = f.cache_info()
        assert (info.errors, cache.breaker.is_open) == (0, False)
        pool: Any = cache.backend.client.connection_pool  # type: ignore[attr-defined]
        idle = [c for c in pool.pool.queue if c is not None]
        assert len(pool.pool.queue) <= size and len(set(map(id, idle))) == len(idle)
    finally:
        cache.close()


def test_threads_busier_than_the_pool_take_turns(redis_url: str) -> None:
    """Threads that keep calling on a pool smaller than their number: a thread giving a
    connection back runs on (the GIL) and must not take it again ahead of the threads
    waiting, or each of them waits out CACHE_POOL_TIMEOUT and goes to the function."""
    cache = make_cache("redis", redis_url, max_connections=2, pool_timeout=1.0)

    @cached(tenant="turns", cache=cache)
    def f(k: int) -> int:
        return k

    for k in range(4):
        f(k)
    stop = time.monotonic() + 2.0
    slowest = [0.0] * 12

    def worker(n: int) -> None:
        while time.monotonic() < stop:
            started = time.monotonic()
            f(n % 4)
            slowest[n] = max(slowest[n], time.monotonic() - started)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert (f.cache_info().errors, cache.breaker.is_open) == (0, False)
        assert max(slowest) < 0.5  # no call waited out (most of) the pool timeout
    finally:
        cache.close()


def test_a_waiting_thread_is_served_before_a_newcomer(redis_url: str) -> None:
    pool = _sync_pool(redis_url, 1, wait=5.0)
    held = pool.get_connection()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool.get_connection()))
    waiter.start()
    while not pool.pool.line:
        time.sleep(0.001)
    pool.release(held)
    pool.timeout = 0.05  # the newcomer may not take the connection the waiter is owed
    with pytest.raises(PoolTimeoutError):
        pool.get_connection()
    waiter.join(5)
    assert got == [held]
    pool.disconnect()


def test_a_connection_beyond_the_pool_size_is_dropped_not_queued(redis_url: str) -> None:
    pool = _sync_pool(redis_url, 1)
    held = pool.get_connection()
    extra = pool.make_connection()
    pool.release(held)
    pool.release(extra)  # the queue is full: dropped, as redis-py drops it
    assert list(pool.pool.queue) == [held]
    pool.disconnect()


def _child_takes_a_connection(pool: BlockingPool, parents: Any, out: Any) -> None:
    mine = pool.get_connection()
    mine.send_command("PING")
    out.put(mine is not parents and mine.pid != parents.pid and mine.read_response() == b"PONG")
    pool.release(mine)


def test_a_forked_child_never_reuses_a_connection_of_its_parent(redis_url: str) -> None:
    """The free path runs redis-py's fork check before it takes an idle connection: the
    parent's socket, left idle in the pool at the fork, must not serve the child too."""
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    pool = _sync_pool(redis_url, 2)
    parents = pool.get_connection()
    pool.release(parents)  # idle in the pool when the process forks
    out = fork.Queue()
    child = fork.Process(target=_child_takes_a_connection, args=(pool, parents, out))
    child.start()
    child.join(30)
    assert child.exitcode == 0 and out.get(timeout=5) is True
    assert pool.get_connection() is parents  # the parent's pool is unchanged
    pool.disconnect()


def test_a_task_cancelled_while_giving_back_a_connection_never_shrinks_the_pool(
    redis_url: str,
) -> None:
    """A release that must wait for the Condition (tasks queued) and is cancelled there
    (a request timeout) still gives the connection back: without that, each such
    cancellation took one connection out of the pool for good."""

    async def main() -> None:
        pool: Any = _async_pool(redis_url, 2)
        client = redis.asyncio.Redis.from_pool(pool)
        connection = await pool.get_connection()
        await pool._condition.acquire()  # as a queued task waking up holds it
        giving = asyncio.ensure_future(pool.release(connection))
        for _ in range(5):
            await asyncio.sleep(0)  # the release now waits for the lock
        giving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await giving
        pool._condition.release()
        for _ in range(5):
            await asyncio.sleep(0)
        assert connection not in pool._in_use_connections
        # Both connections serve at once again (a leaked one would make this wait 5 s).
        got = await asyncio.wait_for(
            asyncio.gather(pool.get_connection(), pool.get_connection()), timeout=2
        )
        for c in got:
            await pool.release(c)
        await client.aclose()

    run(main())


def test_a_waiter_cancelled_as_it_is_woken_passes_the_wake_up_on(redis_url: str) -> None:
    """Python < 3.13's asyncio.Condition loses a notify() whose woken task is cancelled
    before it takes the lock back (gh-112202): the next queued task slept on with the
    connection idle until CACHE_POOL_TIMEOUT (a request timeout among queued callers
    stalled the others; redis-py's own pool does the same)."""

    async def main() -> None:
        pool: Any = _async_pool(redis_url, 1)
        client = redis.asyncio.Redis.from_pool(pool)
        held = await pool.get_connection()
        first = asyncio.ensure_future(pool.get_connection())
        second = asyncio.ensure_future(pool.get_connection())
        for _ in range(5):
            await asyncio.sleep(0)  # both wait on the Condition
        condition = pool._condition
        await condition.acquire()  # held while the release below queues for it
        giving = asyncio.ensure_future(pool.release(held))
        for _ in range(5):
            await asyncio.sleep(0)
        condition.release()  # the release runs and wakes `first`...
        await condition.acquire()  # ...which then queues for the lock behind this
        first.cancel()  # a request timeout, as it takes the lock back
        condition.release()
        await giving
        with pytest.raises(asyncio.CancelledError):
            await first
        got = await asyncio.wait_for(second, timeout=2)  # was: waited the 5 s pool timeout
        await pool.release(got)
        await client.aclose()

    run(main())
