"""The cluster clients under the way production runs them: asyncio.run per request with
many tasks per loop, semantic and exact calls mixed, slots migrating meanwhile.

What failed before (issue 10): redis-py routed FT.SEARCH to a random primary (MOVED two
times in three on open-source RediSearch), and its asyncio client closes every
connection on each fifth MOVED, so neighbouring tasks read "Connection closed by server"
and a healthy shard's breaker opened. These tests count MOVED replies on the servers
themselves (INFO errorstats) and every fail-open error on the client side.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from redis.crc import key_slot

from pmm_memo import Cache, cached, semantic_lookup
from pmm_memo._shared_stats import _flush_all
from pmm_memo.backends._cluster_routing import INDEX_COMMANDS
from tests.conftest import SLOW_MACHINE, make_cache, run
from tests.support.servers import ValkeyCluster

WORDS = "amber basil cobalt dune ember fjord glacier harbor iris jade kelp lotus".split()


def _prompt(i: int) -> str:
    """Twelve distinct prompts, each with its own number (the offline embedder's guard
    keeps different numbers apart)."""
    words = [WORDS[(i * 5 + j * 7) % len(WORDS)] for j in range(6)]
    return " ".join(words) + f" order {i * 7919}"


def _moved_replies(cluster: ValkeyCluster) -> int:
    """MOVED errors the primaries sent since their last CONFIG RESETSTAT."""
    total = 0
    for node in cluster.nodes:
        if node.proc is None:
            continue
        with node.client() as c:
            stats = c.info("errorstats")
            total += int(stats.get("errorstat_MOVED", {}).get("count", 0))
    return total


def _reset_stats(cluster: ValkeyCluster) -> None:
    for node in cluster.nodes:
        with node.client() as c:
            c.config_resetstat()


def _trouble(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Shards taken for down, and closed connections the backend had to retry."""
    words = ("unavailable", "retried once")
    return [r.getMessage() for r in caplog.records if any(w in r.getMessage() for w in words)]


def _functions(cache: Cache, calls: list[str]) -> tuple[Any, Any]:
    @semantic_lookup(threshold=0.9, tenant="pmm_llm", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer " + prompt

    @cached(tenant="pmm_db", cache=cache)
    async def square(x: int) -> int:
        return x * x

    return ask, square


def test_search_commands_go_to_their_index_owner(
    cluster_url: str, cluster_server: ValkeyCluster
) -> None:
    """FT.INFO/FT.CREATE/FT.SEARCH, sync and async: zero MOVED replies on the servers."""
    assert {"search", "info", "create", "dropindex"} <= set(INDEX_COMMANDS)
    cache = make_cache("redis", cluster_url)
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="pmm_llm", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer " + prompt

    ask_async, _ = _functions(cache, calls)
    _reset_stats(cluster_server)
    for i in range(12):
        assert ask(_prompt(i)) == "answer " + _prompt(i)
        assert ask(_prompt(i) + "?") == "answer " + _prompt(i)

    async def go() -> list[str]:
        await asyncio.gather(*(ask_async(_prompt(i)) for i in range(12)))
        return list(await asyncio.gather(*(ask_async(_prompt(i) + "!") for i in range(12))))

    assert asyncio.run(go()) == ["answer " + _prompt(i) for i in range(12)]
    assert _moved_replies(cluster_server) == 0
    assert ask.cache_info().semantic_hits == 12
    assert ask_async.cache_info().semantic_hits == 12
    cache.close()


def test_many_event_loops_many_tasks_never_fail_open(
    cluster_url: str, cluster_server: ValkeyCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """60 asyncio.run() loops x 16 tasks (semantic + exact) on one cache: every call
    answers right and none of them meets a cache error (no closed connections, no
    shard taken for down)."""
    caplog.set_level(logging.DEBUG, logger="pmm_memo")
    cache = make_cache("redis", cluster_url, **SLOW_MACHINE)
    calls: list[str] = []
    ask, square = _functions(cache, calls)

    async def one_request(r: int) -> list[Any]:
        jobs = [ask(_prompt((r + i) % 12)) for i in range(8)]
        jobs += [square((r * 8 + i) % 40) for i in range(8)]
        return list(await asyncio.gather(*jobs))

    for r in range(60):
        got = asyncio.run(one_request(r))
        assert got[:8] == ["answer " + _prompt((r + i) % 12) for i in range(8)]
        assert got[8:] == [((r * 8 + i) % 40) ** 2 for i in range(8)]
    info_a, info_s = ask.cache_info(), square.cache_info()
    assert (info_a.errors, info_s.errors) == (0, 0)
    assert info_a.hits + info_a.semantic_hits > 0 and info_s.hits > 0
    assert len(set(calls)) == len(calls) == 12  # each prompt computed once (single-flight)
    assert _trouble(caplog) == []
    assert cache.backend.open_shards() == []  # type: ignore[attr-defined]
    # One client per live loop at most, released when its loop ended.
    assert len(cache.backend._aclients) <= 1  # type: ignore[attr-defined]
    cache.close()


def _calls(cluster: ValkeyCluster, command: str) -> int:
    total = 0
    for node in cluster.nodes:
        with node.client() as c:
            total += int(c.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))
    return total


def test_later_event_loops_reuse_the_command_table(
    cluster_url: str, cluster_server: ValkeyCluster
) -> None:
    """A client per asyncio.run() must not re-read COMMAND (a ~100 ms parse each time):
    only the first loop's client asks the server for it."""
    cache = make_cache("redis", cluster_url)

    @cached(tenant="pmm_db", cache=cache)
    async def f(x: int) -> int:
        return x

    async def one(i: int) -> int:
        return await f(i % 3)

    # Counted on the servers, so nothing else may start a client meanwhile: this cache's
    # stats flusher uses its sync client (which reads COMMAND once, when it starts) and
    # earlier tests' caches flush what they counted within a second. Both happen first.
    assert cache.backend.client is not None
    _flush_all()
    _reset_stats(cluster_server)
    assert [asyncio.run(one(i)) for i in range(20)] == [i % 3 for i in range(20)]
    assert _calls(cluster_server, "command") == 1
    assert _calls(cluster_server, "cluster|slots") >= 20  # each loop's client did start
    assert f.cache_info().hits == 17
    cache.close()


def test_slot_migration_under_async_load_keeps_every_shard_up(
    own_cluster: ValkeyCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys' slots move while loops of concurrent tasks read them: each MOVED is
    followed (never a wrong answer) and no healthy shard is taken for down (redis-py's
    close-everything refresh after five MOVED replies would do that)."""
    caplog.set_level(logging.DEBUG, logger="pmm_memo")
    cache = make_cache("redis", own_cluster.url, **SLOW_MACHINE)

    @cached(tenant="pmm_db", cache=cache)
    async def f(x: int) -> str:
        return f"value-{x}"

    async def read_all() -> list[str]:
        return list(await asyncio.gather(*(f(i) for i in range(120))))

    assert asyncio.run(read_all()) == [f"value-{i}" for i in range(120)]
    wrong: list[Any] = []
    stop = threading.Event()

    async def rounds() -> None:  # one long-lived loop: it meets every migrated slot
        while not stop.is_set():
            got = await read_all()
            wrong.extend(g for i, g in enumerate(got) if g != f"value-{i}")

    def load() -> None:
        asyncio.run(rounds())

    readers = [threading.Thread(target=load) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        target = own_cluster.nodes[0]
        slots = sorted({key_slot(f.cache_key(i).encode()) for i in range(120)})
        others = [s for s in slots if own_cluster.node_of_slot(s) is not target]
        for slot in others[:12]:
            own_cluster.migrate_slot(slot, target)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert wrong == []
    assert _moved_replies(own_cluster) >= 12  # every loop's client met the moves
    assert _trouble(caplog) == []
    assert f.cache_info().errors == 0
    assert asyncio.run(read_all()) == [f"value-{i}" for i in range(120)]
    cache.close()


@pytest.mark.parametrize("version", ["5.0.1", "7.0.0", "8.0.9b1"])
def test_an_older_redis_py_is_refused_at_configuration(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older redis-py has no routing policies to configure (its cluster clients would send
    FT.SEARCH to one node): a clear error at configuration, not an ImportError later."""
    import redis

    from pmm_memo import CacheConfig, ConfigError

    monkeypatch.setattr(redis, "__version__", version)
    with pytest.raises(ConfigError, match=r"redis-py >= 8\.1.*pip install -U redis"):
        CacheConfig(redis_url="redis+cluster://127.0.0.1:7000")
    monkeypatch.setattr(redis, "__version__", "8.1.0")
    CacheConfig(redis_url="redis+cluster://127.0.0.1:7000")


def test_a_frozen_primary_costs_new_event_loops_no_timeout(own_cluster: ValkeyCluster) -> None:
    """asyncio.run() per request while a primary is frozen and its breaker open: each new
    loop's client reads the slot map from a node that answers (was: redis-py's random
    order of startup nodes made about every second request wait a socket timeout, though
    every key it read was on a healthy shard)."""
    cache = make_cache(
        "redis", own_cluster.url, breaker_interval=60, socket_timeout=2.0, connect_timeout=2.0
    )

    @cached(tenant="pmm_db", cache=cache)
    async def f(x: int) -> int:
        return x

    frozen = own_cluster.nodes[0]
    on_frozen = next(
        i for i in range(100) if cache.backend.shard_of(f.cache_key(i)).endswith(f":{frozen.port}")
    )
    healthy = [
        i
        for i in range(100)
        if not cache.backend.shard_of(f.cache_key(i)).endswith(f":{frozen.port}")
    ][:12]
    for i in healthy:
        run(f(i))
    frozen.freeze()
    try:
        assert run(f(on_frozen)) == on_frozen  # one timeout: its breaker opens
        assert cache.backend.open_shards() == [f"127.0.0.1:{frozen.port}"]  # type: ignore[attr-defined]
        before = f.cache_info().hits
        start = time.monotonic()
        assert [run(f(i)) for i in healthy] == healthy
        took = time.monotonic() - start
    finally:
        frozen.thaw()
    assert f.cache_info().hits == before + len(healthy)
    assert took < 4.0  # twelve loops; one 2 s timeout each half the time was ~12 s
    cache.close()
