"""Where a Redis hit's time goes: a ladder from a bare redis-py HMGET to a pmm_memo hit.

    python3 benchmarks/floors.py [--calls 500] [--repeats 7] [--only hit,miss]

Each rung adds one layer to the one before: the socket timeout pmm_memo sets (fail-open
needs one), the bounded BlockingConnectionPool (a burst waits for a connection instead of
opening unbounded ones), pmm_memo's pool subclass and retry policy, the backend's read
(decode + checksum), and the whole decorated call (wrapper, key, check digest, failure
policy). Measured as client CPU (`time.process_time`, so the server's share of a shared
machine's cores does not count) and wall time; every repeat runs each rung in turn, and
the figure is the median over `--repeats`; ratios against the bare HMGET. Sync and asyncio ladders.

The miss ladder (`--only miss`, see `_floors_miss`) does the same for a miss + store,
from a bare GET + SET EX to a decorated miss, with the server's own time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
import redis.asyncio

from benchmarks._util import redis_server
from pmm_memo import Cache, CacheConfig, cached
from pmm_memo.backends.redis import _READ_FIELDS as READ_FIELDS  # what an exact hit reads
from pmm_memo.backends.redis import RedisBackend

TIMEOUTS = {"socket_timeout": 10.0, "connect_timeout": 10.0}  # as peers.py (PATIENT)
ARGS = ("What is the capital of France?", "gpt-4o-mini", 0.0)


def complete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return "x" * 1000


async def acomplete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return "x" * 1000


def report(title: str, rows: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\n{title}\n| rung | client CPU | ratio | wall | ratio |\n|---|---|---|---|---|")
    base = next(iter(rows.values()))
    cpu0 = statistics.median(c for c, _ in base)
    wall0 = statistics.median(w for _, w in base)
    for name, samples in rows.items():
        cpu = statistics.median(c for c, _ in samples)
        wall = statistics.median(w for _, w in samples)
        ratios = f"{cpu / cpu0:.2f}x | {wall:.1f} µs | {wall / wall0:.2f}x"
        print(f"| {name} | {cpu:.1f} µs | {ratios} |")


def sync_ladder(url: str, calls: int, repeats: int) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **TIMEOUTS))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    pmm = cached(tenant="floors", cache=cache)(complete)
    pmm(*ARGS)
    key = pmm.cache_key(*ARGS)
    bare = redis.Redis.from_url(url, protocol=2)
    timed = redis.Redis.from_url(url, protocol=2, socket_timeout=10.0)
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=50, socket_timeout=10.0)
    blocking = redis.Redis(connection_pool=pool)
    rungs: dict[str, Callable[[], Any]] = {
        "redis-py HMGET": lambda: bare.hmget(key, READ_FIELDS),
        "+ socket timeout": lambda: timed.hmget(key, READ_FIELDS),
        "+ BlockingConnectionPool": lambda: blocking.hmget(key, READ_FIELDS),
        "pmm_memo's client (its pool, retry)": lambda: backend.client.hmget(key, READ_FIELDS),
        "+ backend read (decode, checksum)": lambda: backend.get(key),
        "+ decorated call (a verified hit)": lambda: pmm(*ARGS),
    }
    rows: dict[str, list[tuple[float, float]]] = {n: [] for n in rungs}
    for _ in range(repeats):
        for name, fn in rungs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            rows[name].append((cpu / calls * 1e6, wall / calls * 1e6))
    assert pmm.cache_info().misses == 1, "a timed call missed"
    report("Redis hit, sync: client CPU per call", rows)
    for c in (bare, timed, blocking):
        c.close()
    cache.close()


async def async_ladder(url: str, calls: int, repeats: int) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **TIMEOUTS))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    pmm = cached(tenant="floors", cache=cache)(acomplete)
    await pmm(*ARGS)
    key = pmm.cache_key(*ARGS)
    client = await backend.aclient()
    bare = redis.asyncio.Redis.from_url(url, protocol=2)
    timed = redis.asyncio.Redis.from_url(url, protocol=2, socket_timeout=10.0)
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=50, socket_timeout=10.0
    )
    blocking = redis.asyncio.Redis(connection_pool=pool)
    rungs: dict[str, Callable[[], Awaitable[Any]]] = {
        "redis.asyncio HMGET": lambda: bare.hmget(key, READ_FIELDS),
        "+ socket timeout": lambda: timed.hmget(key, READ_FIELDS),
        "+ BlockingConnectionPool": lambda: blocking.hmget(key, READ_FIELDS),
        "pmm_memo's client (its pool, retry)": lambda: client.hmget(key, READ_FIELDS),
        "+ backend read (decode, checksum)": lambda: backend.aget(key),
        "+ decorated call (a verified hit)": lambda: pmm(*ARGS),
    }
    rows: dict[str, list[tuple[float, float]]] = {n: [] for n in rungs}
    for _ in range(repeats):
        for name, fn in rungs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            rows[name].append((cpu / calls * 1e6, wall / calls * 1e6))
    assert pmm.cache_info().misses == 1, "a timed call missed"
    report("Redis hit, asyncio: client CPU per call", rows)
    for c in (bare, timed, blocking):
        await c.aclose()
    await cache.aclose()
    cache.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--calls", type=int, default=500, help="per rung, per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="hit,miss")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    with redis_server(args.redis_url) as url:
        if "hit" in parts:
            sync_ladder(url, args.calls, args.repeats)
            asyncio.run(async_ladder(url, args.calls, args.repeats))
        if "miss" in parts:
            from benchmarks._floors_miss import async_miss_ladder, sync_miss_ladder

            sync_miss_ladder(url, args.calls, args.repeats)
            asyncio.run(async_miss_ladder(url, args.calls, args.repeats))
    print(f"\n{' '.join(['python3', 'benchmarks/floors.py', *sys.argv[1:]])}")


if __name__ == "__main__":
    main()
