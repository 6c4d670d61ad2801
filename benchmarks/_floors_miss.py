"""Where a Redis miss + store's time goes (`python3 benchmarks/floors.py --only miss`).

Rungs, each on a fresh key per call: a bare GET + SET EX (peers.py's baseline); the read
pmm_memo makes (HMGET of `meta` and `value`) with the same SET; that HMGET with
pmm_memo's one-command write of a prepared entry (the EVALSHA script, fields as
pmm_memo sends them: the server's share); the backend's read and write of an Entry
(the encoding, digests and limit checks added); the decorated call (key, single-flight,
entry building). Client CPU (`time.process_time`), wall time, and the server's own time
per call (INFO commandstats, summed over the commands the rung sends), medians over
`--repeats`, ratios against the bare GET + SET EX.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio

from pmm_memo import Cache, CacheConfig, cached
from pmm_memo.backends._base import Entry
from pmm_memo.backends._write import SHA, _args
from pmm_memo.backends.redis import _READ_FIELDS as READ_FIELDS  # what an exact hit reads
from pmm_memo.backends.redis import RedisBackend

TIMEOUTS = {"socket_timeout": 10.0, "connect_timeout": 10.0}
PAYLOAD = "x" * 1000
TTL_MS = 3_600_000

Sample = tuple[float, float, float]  # client CPU, wall, server (µs per call)


def complete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return PAYLOAD


async def acomplete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    return PAYLOAD


# The commands the rungs send; a script's own HSET/UNLINK/PEXPIRE are inside its time.
_TOP_LEVEL = ("get", "set", "hmget", "evalsha", "eval")


def _server_usec(stats: dict[str, Any]) -> float:
    return float(sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in _TOP_LEVEL))


def report(title: str, rows: dict[str, list[Sample]]) -> None:
    print(f"\n{title}\n| rung | client CPU | ratio | wall | ratio | server |")
    print("|---|---|---|---|---|---|")
    base = next(iter(rows.values()))
    cpu0, wall0 = statistics.median(s[0] for s in base), statistics.median(s[1] for s in base)
    for name, samples in rows.items():
        cpu, wall, server = (statistics.median(s[i] for s in samples) for i in range(3))
        print(
            f"| {name} | {cpu:.1f} µs | {cpu / cpu0:.2f}x | {wall:.1f} µs | "
            f"{wall / wall0:.2f}x | {server:.1f} µs |"
        )


def _entry(backend: RedisBackend, key: str) -> Entry:
    return Entry(
        key=key,
        value=PAYLOAD,
        check=backend.check_of(key.encode()),
        tenant="floors",
        user="",
        fn="f" * 32,
        fn_name="benchmarks.floors.complete",
        created_at=time.time(),
    )


def sync_miss_ladder(url: str, calls: int, repeats: int) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **TIMEOUTS))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    pmm = cached(tenant="floors-miss", cache=cache)(complete)
    bare = redis.Redis.from_url(url, protocol=2)
    n = itertools.count()
    mapping = backend._mapping(_entry(backend, "cache:floors:prepared"), vectors=False)
    pmm("warm")  # learns the server's limits, loads the script

    def get_set() -> None:
        k = f"raw:{next(n)}"
        bare.get(k)
        bare.set(k, PAYLOAD, ex=3600)

    def hmget_set() -> None:
        k = f"raw:{next(n)}"
        bare.hmget(k, READ_FIELDS)
        bare.set(k, PAYLOAD, ex=3600)

    def hmget_script() -> None:
        k = f"cache:floors:{next(n)}"
        bare.hmget(k, READ_FIELDS)
        bare.execute_command("EVALSHA", SHA, *_args(k, mapping, TTL_MS))  # type: ignore[no-untyped-call]

    def backend_rw() -> None:
        k = f"cache:floors:{next(n)}"
        backend.get(k)
        backend.set(_entry(backend, k), TTL_MS)

    rungs: dict[str, Callable[[], Any]] = {
        "redis-py GET + SET EX": get_set,
        "HMGET (meta, value) + SET EX": hmget_set,
        "HMGET + pmm_memo's script write (prepared fields)": hmget_script,
        "backend get + set (encode, digests, limits)": backend_rw,
        "decorated call (a verified miss + store)": lambda: pmm(f"q {next(n)}"),
    }
    rows: dict[str, list[Sample]] = {name: [] for name in rungs}
    for _ in range(repeats):
        for name, fn in rungs.items():
            bare.config_resetstat()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server = _server_usec(bare.info("commandstats"))
            rows[name].append((cpu / calls * 1e6, wall / calls * 1e6, server / calls))
    assert pmm.cache_info().hits == 0, "a timed call hit"
    report("Redis miss + store, sync: per call", rows)
    bare.close()
    cache.close()


async def async_miss_ladder(url: str, calls: int, repeats: int) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", **TIMEOUTS))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    pmm = cached(tenant="floors-miss", cache=cache)(acomplete)
    bare = redis.asyncio.Redis.from_url(url, protocol=2)
    n = itertools.count()
    mapping = backend._mapping(_entry(backend, "cache:floors:prepared"), vectors=False)
    await pmm("warm")

    async def get_set() -> None:
        k = f"araw:{next(n)}"
        await bare.get(k)
        await bare.set(k, PAYLOAD, ex=3600)

    async def hmget_set() -> None:
        k = f"araw:{next(n)}"
        await bare.hmget(k, READ_FIELDS)
        await bare.set(k, PAYLOAD, ex=3600)

    async def hmget_script() -> None:
        k = f"cache:afloors:{next(n)}"
        await bare.hmget(k, READ_FIELDS)
        await bare.execute_command("EVALSHA", SHA, *_args(k, mapping, TTL_MS))  # type: ignore[no-untyped-call]

    async def backend_rw() -> None:
        k = f"cache:afloors:{next(n)}"
        await backend.aget(k)
        await backend.aset(_entry(backend, k), TTL_MS)

    rungs: dict[str, Callable[[], Awaitable[Any]]] = {
        "redis.asyncio GET + SET EX": get_set,
        "HMGET (meta, value) + SET EX": hmget_set,
        "HMGET + pmm_memo's script write (prepared fields)": hmget_script,
        "backend get + set (encode, digests, limits)": backend_rw,
        "decorated call (a verified miss + store)": lambda: pmm(f"aq {next(n)}"),
    }
    rows: dict[str, list[Sample]] = {name: [] for name in rungs}
    for _ in range(repeats):
        for name, fn in rungs.items():
            await bare.config_resetstat()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            server = _server_usec(await bare.info("commandstats"))
            rows[name].append((cpu / calls * 1e6, wall / calls * 1e6, server / calls))
    assert pmm.cache_info().hits == 0, "a timed call hit"
    report("Redis miss + store, asyncio: per call", rows)
    await bare.aclose()
    await cache.aclose()
    cache.close()
