"""Exact-hit latency: pmm_memo beside the baselines, measured in the same run.

    python3 benchmarks/bench_exact.py [--redis-url redis://...] [--calls N]

Memory backend: a 3-argument call, beside functools.lru_cache and cachetools.cached.
Redis: a hit beside a raw redis-py HMGET of the same entry's fields (same server, same
payload), sync and async, in interleaved rounds; the reported ratio is the median of the
per-round ratios. Every timed pmm_memo call is checked to have been a hit.
Without --redis-url a Valkey + RediSearch server is started from the PyPI packages.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cachetools
import redis
import redis.asyncio

from benchmarks._util import (
    aalternating,
    alternating,
    per_call_samples,
    ratio_of_rounds,
    redis_server,
    row,
)
from pmm_memo import Cache, CacheConfig, cached
from pmm_memo.backends.redis import _READ_FIELDS as READ_FIELDS  # what an exact hit reads

ARGS = ("What is the capital of France?", "gpt-4o-mini", 0.0)


def bench_memory(calls: int) -> None:
    cache = Cache(CacheConfig(embedder="offline"))

    @cached(tenant="bench", cache=cache)
    def pmm(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return prompt

    @functools.lru_cache(maxsize=10000)
    def lru(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return prompt

    @cachetools.cached(cachetools.LRUCache(10000))
    def ct(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return prompt

    for fn in (pmm, lru, ct):
        fn(*ARGS)
    before = pmm.cache_info()
    results: dict[str, list[float]] = {"pmm": [], "lru": [], "ct": []}
    for _ in range(5):  # interleave so a noisy moment hits every contender alike
        results["pmm"] += per_call_samples(lambda: pmm(*ARGS), calls // 5, 100)
        results["lru"] += per_call_samples(lambda: lru(*ARGS), calls // 5, 100)
        results["ct"] += per_call_samples(lambda: ct(*ARGS), calls // 5, 100)
    after = pmm.cache_info()
    timed = 5 * (calls // 5 // 100) * 100
    assert after.misses == before.misses and after.hits - before.hits == timed, after
    print(f"Memory backend, exact hit, 3-argument call ({timed} calls each, all hits)")
    print(row("pmm_memo @cached (memory)", results["pmm"]))
    print(row("functools.lru_cache", results["lru"]))
    print(row("cachetools.cached(LRUCache)", results["ct"]))


def bench_redis_sync(url: str, calls: int, payload: str) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline"))

    @cached(tenant="bench", cache=cache)
    def pmm(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return payload

    pmm(*ARGS)
    key = pmm.cache_key(*ARGS)
    raw = redis.Redis.from_url(url, protocol=2)  # the protocol pmm_memo's client uses
    raw.hmget(key, READ_FIELDS)
    before = pmm.cache_info()
    rounds = 20
    ours, base = alternating(lambda: pmm(*ARGS), lambda: raw.hmget(key, READ_FIELDS), calls, rounds)
    after = pmm.cache_info()
    timed = rounds * (calls // rounds // 10) * 10
    assert after.misses == before.misses and after.hits - before.hits == timed, after
    flat_o = [x for s in ours for x in s]
    flat_b = [x for s in base for x in s]
    print(f"\nRedis, exact hit, {len(payload)}-byte result ({timed} calls each, all hits, sync)")
    print(row("pmm_memo @cached (redis, sync)", flat_o))
    print(row("raw redis-py HMGET of the same entry", flat_b))
    print(f"  median per-round ratio pmm/raw: {ratio_of_rounds(ours, base):.2f}x")
    raw.close()
    cache.close()


async def _bench_redis_async(url: str, calls: int, payload: str) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline"))

    @cached(tenant="bench", cache=cache)
    async def pmm(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return payload

    await pmm(*ARGS)
    key = pmm.cache_key(*ARGS)
    raw = redis.asyncio.Redis.from_url(url, protocol=2)
    await raw.hmget(key, READ_FIELDS)
    before = pmm.cache_info()
    rounds = 20

    async def ours_once() -> Any:
        return await pmm(*ARGS)

    async def raw_once() -> Any:
        return await raw.hmget(key, READ_FIELDS)

    ours, base = await aalternating(ours_once, raw_once, calls, rounds)
    after = pmm.cache_info()
    timed = rounds * (calls // rounds // 10) * 10
    assert after.misses == before.misses and after.hits - before.hits == timed, after
    print(f"\nRedis, exact hit, {len(payload)}-byte result ({timed} calls each, all hits, async)")
    print(row("pmm_memo @cached (redis, asyncio)", [x for s in ours for x in s]))
    print(row("raw redis.asyncio HMGET of the same entry", [x for s in base for x in s]))
    print(f"  median per-round ratio pmm/raw: {ratio_of_rounds(ours, base):.2f}x")
    await raw.aclose()
    await cache.aclose()
    cache.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--calls", type=int, default=200_000, help="memory calls per contender")
    parser.add_argument("--redis-calls", type=int, default=20_000)
    parser.add_argument("--payload-bytes", type=int, default=1000)
    args = parser.parse_args(argv)
    bench_memory(args.calls)
    payload = ("x" * args.payload_bytes)[: args.payload_bytes]
    with redis_server(args.redis_url) as url:
        bench_redis_sync(url, args.redis_calls, payload)
        asyncio.run(_bench_redis_async(url, args.redis_calls, payload))


if __name__ == "__main__":
    main()
