"""pmm_memo beside its peers and the raw redis-py floors, side by side in one process run.

    pip install -e '.[test,bench]'
    python3 benchmarks/peers.py [--repeats 3] [--only inprocess,redis,semantic,memory,index]

Peers (extra `bench`, never runtime dependencies): cachetools, dogpile.cache, aiocache,
cashews, RedisVL SemanticCache. Floors: raw redis-py HMGET of the same entry, GET + SET EX,
one raw FT.SEARCH. Every row's contenders run interleaved (see `_interleave`), repeated
`--repeats` times; ratios are medians of per-repeat ratios against the row's baseline.
Every timed call is verified to be what its row claims: the function behind each
contender counts its executions, so a "hit" row fails if anything was computed and a
"miss + store" row fails unless everything was (and stored, with a TTL); semantic hits
are counted by pmm_memo's own `semantic_hits` and by RedisVL's returned response.
Without --redis-url a Valkey + RediSearch server is started from the PyPI packages
(tests/support/servers.py).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cachetools
import cachetools.keys
import redis
import redis.asyncio

from benchmarks._interleave import Table, ainterleaved, interleaved, timed_calls
from benchmarks._util import redis_server
from pmm_memo import Cache, CacheConfig, cached
from pmm_memo.backends.redis import _READ_FIELDS as READ_FIELDS  # what an exact hit reads

# The peers wait on their sockets without a timeout; pmm_memo's default (0.25 s, then fail
# open) would turn a scheduling stall on a loaded machine into a verified-hit failure.
PATIENT = {"socket_timeout": 10.0, "connect_timeout": 10.0}
computed: dict[str, int] = {}


PAYLOAD = "x" * 1000  # the stored result (--payload-bytes)


def complete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return PAYLOAD


async def acomplete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return PAYLOAD


def lookup(question: str, n: int, temperature: float) -> str:
    return "answer"


def summarise(text: str, passages: list[str]) -> str:
    return "answer"


def counting(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (its signature kept, as decorators read it) counting its executions."""
    computed[name] = 0

    @functools.wraps(func)
    def body(*args: Any, **kwargs: Any) -> Any:
        computed[name] += 1
        return func(*args, **kwargs)

    return body


def acounting(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    computed[name] = 0

    @functools.wraps(func)
    async def body(*args: Any, **kwargs: Any) -> Any:
        computed[name] += 1
        return await func(*args, **kwargs)

    return body


def check_hits(names: list[str], before: dict[str, int]) -> None:
    for n in names:
        assert computed[n] == before[n], f"{n}: {computed[n] - before[n]} timed calls missed"


def check_misses(names: list[str], before: dict[str, int], expected: int) -> None:
    for n in names:
        got = computed[n] - before[n]
        assert got == expected, f"{n}: {got} of {expected} timed calls computed"


# -- in-process -------------------------------------------------------------------------------


def bench_inprocess(table: Table, args: argparse.Namespace) -> None:
    calls, batch, reps = args.memory_calls, 100, args.repeats
    cache = Cache(CacheConfig(embedder="offline"))
    shapes: list[tuple[str, Any, tuple[Any, ...], float, Callable[..., Any] | None]] = [
        (
            "in-process hit, f(str, int, float)",
            lookup,
            ("What is the capital of France?", 3, 0.5),
            2,
            None,
        ),
        (
            "in-process hit, f(2 KB str, list of 20 str)",
            summarise,
            ("x" * 2048, [f"retrieved passage number {i}" for i in range(20)]),
            3,
            # cachetools needs hashable arguments: the key a cachetools user must write.
            lambda text, items: cachetools.keys.hashkey(text, tuple(items)),
        ),
    ]
    for path, func, call_args, limit, ct_key in shapes:
        pmm = cached(tenant="bench", cache=cache)(counting("pmm", func))
        ttl_cache: cachetools.TTLCache[Any, Any] = cachetools.TTLCache(10_000, ttl=3600)
        ct_deco = (
            cachetools.cached(ttl_cache, key=ct_key)
            if ct_key is not None
            else cachetools.cached(ttl_cache)
        )
        ct = ct_deco(counting("cachetools", func))
        contenders: dict[str, Callable[[], Any]] = {
            "cachetools TTLCache": lambda ct=ct, a=call_args: ct(*a),
            "pmm_memo @cached (embedded)": lambda pmm=pmm, a=call_args: pmm(*a),
        }
        if ct_key is None:
            lru = functools.lru_cache(maxsize=10_000)(counting("lru_cache", func))
            contenders["functools.lru_cache (no TTL)"] = lambda lru=lru, a=call_args: lru(*a)
        for fn in contenders.values():
            fn()  # fill
        before = dict(computed)
        hits_before = pmm.cache_info().hits
        results = interleaved(contenders, calls=calls, batch=batch, repeats=reps)
        check_hits(["pmm", "cachetools", *(["lru_cache"] if ct_key is None else [])], before)
        n = timed_calls(calls, batch, reps)
        assert pmm.cache_info().hits - hits_before == n
        print(f"\n{path} ({n} calls each, all verified hits)")
        table.add_row(
            path,
            results,
            "cachetools TTLCache",
            {"pmm_memo @cached (embedded)": (f"≤ {limit:g}x cachetools", limit)},
        )


# -- Redis, exact -----------------------------------------------------------------------------

ARGS = ("What is the capital of France?", "gpt-4o-mini", 0.0)


def _dogpile_region(url: str) -> Any:
    from dogpile.cache import make_region

    return make_region().configure(
        "dogpile.cache.redis",
        expiration_time=3600,
        arguments={"url": url, "redis_expiration_time": 3600, "distributed_lock": False},
    )


def bench_redis_sync(table: Table, url: str, args: argparse.Namespace, payload: str) -> None:
    calls, batch, reps = args.redis_calls, 10, args.repeats
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **PATIENT))
    region = _dogpile_region(url)
    raw = redis.Redis.from_url(url, protocol=2)  # the protocol pmm_memo's client uses
    pmm = cached(tenant="bench", cache=cache)(counting("pmm", complete))
    dog = region.cache_on_arguments()(counting("dogpile", complete))
    pmm(*ARGS)
    dog(*ARGS)
    key = pmm.cache_key(*ARGS)
    assert raw.hmget(key, READ_FIELDS)[READ_FIELDS.index("value")] == payload.encode()
    before, hits = dict(computed), pmm.cache_info().hits
    results = interleaved(
        {
            "raw redis-py HMGET (same entry)": lambda: raw.hmget(key, READ_FIELDS),
            "pmm_memo @cached (redis)": lambda: pmm(*ARGS),
            "dogpile.cache (redis)": lambda: dog(*ARGS),
        },
        calls=calls,
        batch=batch,
        repeats=reps,
    )
    check_hits(["pmm", "dogpile"], before)
    n = timed_calls(calls, batch, reps)
    assert pmm.cache_info().hits - hits == n
    path = "Redis hit, sync"
    print(f"\n{path} ({len(payload)}-byte result, {n} calls each, all verified hits)")
    table.add_row(
        path,
        results,
        "raw redis-py HMGET (same entry)",
        {"pmm_memo @cached (redis)": ("≤ 1.2x HMGET", 1.2)},
    )

    counter, pc = itertools.count(), itertools.count()
    pmm_new = lambda: pmm(f"new question {next(pc)}", "gpt-4o-mini", 0.0)  # noqa: E731
    dog_new = lambda: dog(f"new question {next(counter)}", "gpt-4o-mini", 0.0)  # noqa: E731

    def raw_new() -> None:
        k = f"raw:{next(counter)}"
        raw.get(k)
        raw.set(k, payload, ex=3600)

    before, misses = dict(computed), pmm.cache_info().misses
    results = interleaved(
        {
            "raw GET + SET EX": raw_new,
            "pmm_memo @cached (redis)": pmm_new,
            "dogpile.cache": dog_new,
        },
        calls=calls,
        batch=batch,
        repeats=reps,
    )
    check_misses(["pmm", "dogpile"], before, n)
    assert pmm.cache_info().misses - misses == n
    pipe = raw.pipeline(transaction=False)
    for i in range(next(pc)):
        pipe.pttl(pmm.cache_key(f"new question {i}", "gpt-4o-mini", 0.0))
    assert all(0 < t <= 3_600_000 for t in pipe.execute()), "an entry was not stored with a TTL"
    path = "Redis miss + store, sync"
    print(f"\n{path} ({n} calls each, all verified misses, each stored with a TTL)")
    table.add_row(
        path, results, "raw GET + SET EX", {"pmm_memo @cached (redis)": ("≤ 1.5x GET+SET", 1.5)}
    )
    raw.close()
    cache.close()


async def bench_redis_async(table: Table, url: str, args: argparse.Namespace, payload: str) -> None:
    from aiocache import Cache as AioCache
    from aiocache import cached as aio_cached
    from cashews import Cache as CashewsCache

    calls, batch, reps = args.redis_calls, 10, args.repeats
    host, port = url.split("//")[1].split("/")[0].split(":")
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **PATIENT))
    raw = redis.asyncio.Redis.from_url(url, protocol=2)
    cashews = CashewsCache()
    cashews.setup(url, client_side=False)
    pmm = cached(tenant="bench", cache=cache)(acounting("pmm", acomplete))
    aio = aio_cached(
        ttl=3600, cache=AioCache.REDIS, endpoint=host, port=int(port), namespace="aio"
    )(acounting("aiocache", acomplete))
    cash = cashews(ttl="1h")(acounting("cashews", acomplete))
    for fn in (pmm, aio, cash):
        await fn(*ARGS)
    key = pmm.cache_key(*ARGS)
    before, hits = dict(computed), pmm.cache_info().hits
    results = await ainterleaved(
        {
            "raw redis.asyncio HMGET (same entry)": lambda: raw.hmget(key, READ_FIELDS),
            "pmm_memo @cached (redis, async)": lambda: pmm(*ARGS),
            "aiocache (redis)": lambda: aio(*ARGS),
            "cashews (redis)": lambda: cash(*ARGS),
        },
        calls=calls,
        batch=batch,
        repeats=reps,
    )
    check_hits(["pmm", "aiocache", "cashews"], before)
    n = timed_calls(calls, batch, reps)
    assert pmm.cache_info().hits - hits == n
    path = "Redis hit, async"
    print(f"\n{path} ({len(payload)}-byte result, {n} calls each, all verified hits)")
    table.add_row(
        path,
        results,
        "raw redis.asyncio HMGET (same entry)",
        {"pmm_memo @cached (redis, async)": ("≤ 1.15x HMGET", 1.15)},
    )

    counter, pc = itertools.count(), itertools.count()

    async def raw_new() -> None:
        k = f"raw:{next(counter)}"
        await raw.get(k)
        await raw.set(k, payload, ex=3600)

    before, misses = dict(computed), pmm.cache_info().misses
    results = await ainterleaved(
        {
            "raw GET + SET EX (async)": raw_new,
            "pmm_memo @cached (redis, async)": lambda: pmm(f"q {next(pc)}", "m", 0.0),
            "aiocache (redis)": lambda: aio(f"q {next(counter)}", "m", 0.0),
            "cashews (redis)": lambda: cash(f"q {next(counter)}", "m", 0.0),
        },
        calls=calls,
        batch=batch,
        repeats=reps,
    )
    check_misses(["pmm", "aiocache", "cashews"], before, n)
    assert pmm.cache_info().misses - misses == n
    pipe = raw.pipeline(transaction=False)
    for i in range(next(pc)):
        pipe.pttl(pmm.cache_key(f"q {i}", "m", 0.0))
    assert all(0 < t <= 3_600_000 for t in await pipe.execute()), "an entry was stored without TTL"
    path = "Redis miss + store, async"
    print(f"\n{path} ({n} calls each, all verified misses, each stored with a TTL)")
    aio_ratio = results["aiocache (redis)"].ratio(results["raw GET + SET EX (async)"])
    table.add_row(
        path,
        results,
        "raw GET + SET EX (async)",
        {"pmm_memo @cached (redis, async)": (f"≤ aiocache ({aio_ratio:.2f}x)", aio_ratio)},
    )
    await raw.aclose()
    await cache.aclose()
    cache.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-calls", type=int, default=50_000, help="per contender, repeat")
    parser.add_argument("--redis-calls", type=int, default=2_000, help="per contender, repeat")
    parser.add_argument("--payload-bytes", type=int, default=1000)
    parser.add_argument("--sizes", default="1000,10000", help="semantic rows: entries")
    parser.add_argument("--queries", type=int, default=200, help="semantic queries per repeat")
    parser.add_argument("--memory-entries", type=int, default=5000, help="server memory row")
    parser.add_argument("--only", default="inprocess,redis,semantic,memory,index")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    table = Table()
    if "inprocess" in parts:
        bench_inprocess(table, args)
    global PAYLOAD
    PAYLOAD = payload = ("x" * args.payload_bytes)[: args.payload_bytes]
    with redis_server(args.redis_url) as url:
        if "redis" in parts:
            bench_redis_sync(table, url, args, payload)
            asyncio.run(bench_redis_async(table, url, args, payload))
        if parts & {"semantic", "index"}:
            from benchmarks._peers_semantic import bench_index, bench_semantic

            if "semantic" in parts:
                bench_semantic(table, url, args)
            if "index" in parts:
                bench_index(table, url, args)
    if "memory" in parts:
        from benchmarks._peers_semantic import bench_server_memory

        bench_server_memory(table, args)
    print(f"\n{' '.join(['python3', 'benchmarks/peers.py', *sys.argv[1:]])}\n")
    print(table.markdown())


if __name__ == "__main__":
    main()
