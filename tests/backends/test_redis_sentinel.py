"""Sentinel URLs: parsing, masking, and a real Sentinel in front of a real master."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmm_memo import CacheConfig, ConfigError, cached, semantic_lookup
from pmm_memo._config import mask_url
from pmm_memo.backends._connect import SentinelTarget, parse_sentinel_url
from tests.conftest import SLOW_MACHINE, make_cache, run
from tests.support.servers import SentinelServer, ValkeyServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://127.0.0.1:26379/mymaster",
            SentinelTarget([("127.0.0.1", 26379)], "mymaster", 0, None, None),
        ),
        (
            "redis+sentinel://:pw@h1:1,h2:2/svc/3",
            SentinelTarget([("h1", 1), ("h2", 2)], "svc", 3, None, "pw"),
        ),
        (
            "redis+sentinel://app:p%40ss@h:26379/svc",
            SentinelTarget([("h", 26379)], "svc", 0, "app", "p@ss"),
        ),
    ],
)
def test_sentinel_urls_parse(url: str, expected: SentinelTarget) -> None:
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis+sentinel://h:26379", "service name"),
        ("redis+sentinel://h:26379/", "service name"),
        ("redis+sentinel://h/svc", "host:port"),
        ("redis+sentinel://h:1,:2/svc", "host:port"),
        ("redis+sentinel://h:1/svc/x", "service_name"),
    ],
)
def test_bad_sentinel_urls_fail_at_configuration(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CacheConfig(redis_url=url)


def test_masking_handles_host_lists() -> None:
    assert mask_url("redis+sentinel://app:s3cret@h1:1,h2:2/svc") == (
        "redis+sentinel://app:***@h1:1,h2:2/svc"
    )
    assert mask_url("redis+sentinel://h1:1,h2:2/svc") == "redis+sentinel://h1:1,h2:2/svc"


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[ValkeyServer, SentinelServer]]:
    master = ValkeyServer(search=True, log_dir=tmp_path).start()
    watcher = SentinelServer(master.port, tmp_path).start()
    yield master, watcher
    watcher.stop()
    master.stop()


def test_caching_through_sentinel(sentinel: tuple[ValkeyServer, SentinelServer]) -> None:
    master, watcher = sentinel
    url = f"redis+sentinel://127.0.0.1:{watcher.port}/mymaster/0"
    cache = make_cache("redis", url)
    calls: list[int] = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        calls.append(x)
        return x + 1

    @cached(tenant="t", cache=cache)
    async def g(x: int) -> int:
        calls.append(-x)
        return x - 1

    async def both() -> list[int]:
        out = [await g(5), await g(5)]
        await cache.aclose()
        return out

    assert [f(1), f(1)] == [2, 2]
    assert run(both()) == [4, 4]
    assert calls == [1, -5]
    assert master.client().exists(f.cache_key(1)) == 1  # the entry is on the master
    cache.close()


def test_semantic_reads_ahead_through_sentinel(
    sentinel: tuple[ValkeyServer, SentinelServer],
) -> None:
    """The combined exact read + KNN (backends._read_ahead) on Sentinel-managed
    connections, sync and async."""
    _, watcher = sentinel
    cache = make_cache("redis", f"redis+sentinel://127.0.0.1:{watcher.port}/mymaster/0")

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return f"answer: {prompt}"

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def aask(prompt: str) -> str:
        return f"async answer: {prompt}"

    assert ask("How do I reset my password?") == "answer: How do I reset my password?"
    ask._memo().ahead = True
    assert ask("how do i reset my password") == "answer: How do I reset my password?"
    assert ask._memo().ahead  # a semantic hit: still reading ahead
    assert ask("How do I reset my password?") == "answer: How do I reset my password?"
    assert not ask._memo().ahead and ask.cache_info().hits == 1

    async def both() -> list[str]:
        first = await aask("What is the capital of France?")
        aask._memo().ahead = True
        out = [first, await aask("what is the capital of france"), await aask(first[14:])]
        await cache.aclose()
        return out

    assert run(both()) == ["async answer: What is the capital of France?"] * 3
    assert aask.cache_info().hits == 1 and aask.cache_info().semantic_hits == 1
    assert ask.cache_info().errors == aask.cache_info().errors == 0
    cache.close()


@pytest.mark.slow
def test_sentinel_pool_waits_for_a_connection(
    sentinel: tuple[ValkeyServer, SentinelServer],
) -> None:
    """150 threads, then 150 tasks on one loop, on a pool of 4 Sentinel-managed
    connections: callers queue (CACHE_MAX_CONNECTIONS / CACHE_POOL_TIMEOUT) instead of
    getting MaxConnectionsError; nothing is counted as an error and every distinct key
    is computed once."""
    _, watcher = sentinel
    url = f"redis+sentinel://127.0.0.1:{watcher.port}/mymaster/0"
    cache = make_cache("redis", url, max_connections=4, pool_timeout=60.0, **SLOW_MACHINE)
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    @cached(tenant="conc", cache=cache)
    def f(k: int) -> int:
        with lock:
            calls[k] += 1
        return k

    @cached(tenant="conc", cache=cache)
    async def g(k: int) -> int:
        calls[-k - 1] += 1
        return -k

    failures: list[BaseException] = []
    start = threading.Barrier(150)

    def caller(i: int) -> None:
        try:
            start.wait()
            for j in range(4):
                k = (i + j * 37) % 60
                assert f(k) == k
        except BaseException as exc:  # collected: asserted below
            failures.append(exc)

    async def tasks() -> None:
        got = await asyncio.gather(*(g(i % 60) for i in range(150)))
        assert got == [-(i % 60) for i in range(150)]
        await cache.aclose()

    try:
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(150)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run(tasks())
        assert failures == []
        assert (f.cache_info().errors, g.cache_info().errors) == (0, 0)
        assert not cache.breaker.is_open
        assert (f.cache_info().misses, g.cache_info().misses) == (60, 60)
        assert set(calls.values()) == {1}
        pool = cache.backend.client.connection_pool  # type: ignore[attr-defined]
        assert len(pool._connections) <= 4
    finally:
        cache.close()
