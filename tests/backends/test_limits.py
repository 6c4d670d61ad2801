"""What the server refuses because of one entry is that entry's problem, never an outage.

A server started with `--proto-max-bulk-len 1mb` refuses a 2 MB result (well under the
default CACHE_MAX_VALUE_BYTES) and closes the connection. The call must return the right
value, count it `uncacheable`, leave the breaker closed, and an already-cached key must
keep hitting: with the limit learned from CONFIG GET, with CONFIG refused (an ACL user
without it, a renamed CONFIG), on one server and on a cluster, sync and async. A key of
another type at an entry's key (WRONGTYPE) is that entry's problem too (`corrupt`), also
in batched reads. The embedded backend has no such server limit (not applicable).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import Cache, cached
from pmm_memo._stats import Counters
from tests.conftest import SLOW_MACHINE, make_cache, run
from tests.support.servers import ValkeyCluster, ValkeyServer

BIG = 2 * 1024 * 1024
LIMIT = ("--proto-max-bulk-len", "1mb")


def _acl_user(server: ValkeyServer) -> str:
    """A user allowed everything but CONFIG; its URL."""
    admin = server.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all", "-config")
    admin.close()
    return f"redis://app:app-pw@127.0.0.1:{server.port}/0"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(search=True, log_dir=tmp_path_factory.mktemp("limited"), extra_args=LIMIT)
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(
        search=True,
        log_dir=tmp_path_factory.mktemp("renamed"),
        extra_args=(*LIMIT, "--rename-command", "CONFIG", "pmm-test-config"),
    )
    yield server.start()
    server.stop()


@pytest.fixture
def limited_cluster(cluster_url: str, cluster_server: ValkeyCluster) -> Iterator[str]:
    """The session cluster with every primary's proto-max-bulk-len lowered to 1 MB."""
    for node in cluster_server.nodes:
        node.client().config_set("proto-max-bulk-len", "1mb")
    yield cluster_url
    for node in cluster_server.nodes:
        node.client().config_set("proto-max-bulk-len", "512mb")


def _url(where: str, request: pytest.FixtureRequest) -> str:
    if where == "cluster":
        return str(request.getfixturevalue("limited_cluster"))
    if where == "renamed":
        server: ValkeyServer = request.getfixturevalue("renamed")
        server.client().flushall()
        return server.url
    server = request.getfixturevalue("limited")
    server.client().flushall()
    return _acl_user(server) if where == "acl" else server.url


WHERE = ["config", "acl", "renamed", "cluster"]  # how the limit is (or is not) known


def _functions(cache: Cache, calls: Counter[str]) -> tuple[object, object]:
    @cached(tenant="limits", cache=cache)
    def small(i: int) -> str:
        calls["small"] += 1
        return f"s{i}"

    @cached(tenant="limits", cache=cache)
    def big(i: int) -> str:
        calls["big"] += 1
        return "x" * BIG

    return small, big


@pytest.mark.parametrize("where", WHERE)
def test_a_result_over_the_servers_limit_is_uncacheable_not_an_outage(
    where: str, request: pytest.FixtureRequest
) -> None:
    cache = make_cache("redis", _url(where, request), **SLOW_MACHINE)
    calls: Counter[str] = Counter()
    small, big = _functions(cache, calls)
    try:
        assert small(1) == "s1"  # type: ignore[operator]
        for n in (1, 2):  # the second one: refused before sending when it was learned
            assert big(1) == "x" * BIG  # type: ignore[operator]
            assert not cache.breaker.is_open
            for _ in range(20):
                assert small(1) == "s1"  # type: ignore[operator]
            assert calls == {"small": 1, "big": n}
        info = big.cache_info()  # type: ignore[attr-defined]
        assert (info.uncacheable, info.errors) == (2, 0)
        limits = cache.backend._limits  # type: ignore[attr-defined]
        learned = where in ("config", "cluster")  # else CONFIG is refused: unknown
        assert limits.bulk == (1024 * 1024 if learned else None)
        if learned:
            assert limits.refused is None  # never sent: refused before sending
        else:  # the entry's size (the result and the entry's small fields) was learned
            assert BIG <= limits.refused < BIG + 4096
        assert small.cache_info().hits == 40  # type: ignore[attr-defined]
        assert cache.counters.errors == 0
    finally:
        cache.close()


@pytest.mark.parametrize("where", WHERE)
def test_async_a_result_over_the_servers_limit_is_uncacheable_not_an_outage(
    where: str, request: pytest.FixtureRequest
) -> None:
    cache = make_cache("redis", _url(where, request), **SLOW_MACHINE)
    calls: Counter[str] = Counter()

    @cached(tenant="limits", cache=cache)
    async def small(i: int) -> str:
        calls["small"] += 1
        return f"s{i}"

    @cached(tenant="limits", cache=cache)
    async def big(i: int) -> str:
        calls["big"] += 1
        return "x" * BIG

    async def main() -> None:
        assert await small(1) == "s1"
        for n in (1, 2):
            assert await big(1) == "x" * BIG
            assert not cache.breaker.is_open
            for _ in range(20):
                assert await small(1) == "s1"
            assert calls == {"small": 1, "big": n}
        await cache.aclose()

    try:
        run(main())
        info = big.cache_info()
        assert (info.uncacheable, info.errors) == (2, 0)
        assert small.cache_info().hits == 40
    finally:
        cache.close()


def test_a_large_write_to_a_dead_server_is_still_an_outage(tmp_path: Path) -> None:
    """Without known limits, a lost connection is blamed on the entry only when the
    server still answers: a stopped server opens the breaker as before."""
    server = ValkeyServer(search=False, log_dir=tmp_path, extra_args=LIMIT).start()
    cache = make_cache("redis", _acl_user(server), breaker_interval=60.0)
    calls: Counter[str] = Counter()
    small, big = _functions(cache, calls)
    try:
        assert small(1) == "s1"  # type: ignore[operator]
        server.stop()
        assert big(1) == "x" * BIG  # type: ignore[operator]
        assert cache.breaker.is_open
        assert big.cache_info().uncacheable == 0  # type: ignore[attr-defined]
    finally:
        cache.close()
        server.stop()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
def test_a_key_of_another_type_is_a_corrupt_entry_not_a_failure(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = str(request.getfixturevalue(f"{kind}_url"))
    cache = make_cache(kind, url, **SLOW_MACHINE)
    calls: list[int] = []

    @cached(tenant="types", cache=cache)
    def f(i: int) -> int:
        calls.append(i)
        return i * 2

    @cached(tenant="types", cache=cache)
    async def g(i: int) -> int:
        calls.append(-i)
        return i * 3

    try:
        client = cache.backend.client  # type: ignore[attr-defined]
        for i in (1, 2):
            client.set(f.cache_key(i), "another program's string")
            client.set(g.cache_key(i), "another program's string")
        assert [f(1), f(1), run(g(1)), run(g(1))] == [2, 2, 3, 3]
        assert calls == [1, -1]  # then the recomputed entry replaced the foreign key
        assert (f.cache_info().corrupt, f.cache_info().errors) == (1, 0)
        assert (g.cache_info().corrupt, g.cache_info().errors) == (1, 0)
        assert not cache.breaker.is_open
        # A batch of reads with one foreign key still returns the other entries.
        keys = [(f.cache_key(1), cache.backend.fetch(f.cache_key(1)).check)]  # type: ignore[attr-defined, union-attr]
        keys.append((f.cache_key(2), "anything"))
        counters = Counters()
        assert cache.read_many(keys, counters)[0] == 2
        assert asyncio.run(_aread_many(cache, keys, counters))[0] == 2
        assert (counters.corrupt, counters.errors) == (2, 0)
        assert f.cache_info().currsize == 1  # counting skips the foreign key, not fails
        assert not [r.message for r in caplog.records if "failed" in r.message]
    finally:
        cache.close()


async def _aread_many(
    cache: Cache, keys: list[tuple[str, str | bytes]], c: Counters
) -> list[object]:
    try:
        return await cache.aread_many(keys, c)
    finally:
        await cache.aclose()


@pytest.fixture
def reply_limited(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A server that will cap its normal clients' replies at 1 MB (see `_limits`)."""
    server = ValkeyServer(search=True, log_dir=tmp_path).start()
    yield server
    server.stop()


# Module-level functions (no closure): two caches must compute the same keys for them.
CALLS: Counter[str] = Counter()


def small_sync(i: int) -> str:
    CALLS["small"] += 1
    return f"s{i}"


def big_sync(i: int) -> str:
    CALLS["big"] += 1
    return "x" * BIG


async def small_async(i: int) -> str:
    CALLS["small"] += 1
    return f"s{i}"


async def big_async(i: int) -> str:
    CALLS["big"] += 1
    return "x" * BIG


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("who", ["config", "acl", "cluster"])
def test_an_entry_the_server_will_not_send_is_that_entrys_problem(
    who: str, mode: str, request: pytest.FixtureRequest
) -> None:
    """With `client-output-buffer-limit normal 1mb 1mb 0` the server closes the
    connection instead of sending a 2 MB reply. An entry that large, written before the
    limit was set, is a corrupt entry (removed), not an outage; a new one is not written
    (it could never be read back); the already-cached key keeps hitting."""
    if who == "cluster":
        url = str(request.getfixturevalue("cluster_url"))
        nodes = request.getfixturevalue("cluster_server").nodes
    else:
        server = request.getfixturevalue("reply_limited")
        url = _acl_user(server) if who == "acl" else server.url
        nodes = [server]
    CALLS.clear()
    small_fn, big_fn = (small_sync, big_sync) if mode == "sync" else (small_async, big_async)

    def call(fn: Any) -> Any:
        return fn(1) if mode == "sync" else run(fn(1))

    writer = make_cache("redis", url, **SLOW_MACHINE)
    assert call(cached(tenant="limits", cache=writer)(big_fn)) == "x" * BIG
    writer.close()
    for node in nodes:
        node.client().config_set("client-output-buffer-limit", "normal 1mb 1mb 0")
    cache = make_cache("redis", url, **SLOW_MACHINE)
    small = cached(tenant="limits", cache=cache)(small_fn)
    big = cached(tenant="limits", cache=cache)(big_fn)
    try:
        assert call(small) == "s1"
        for _ in range(2):
            assert call(big) == "x" * BIG
            assert not cache.breaker.is_open
            for _ in range(20):
                assert call(small) == "s1"
        assert CALLS == {"small": 1, "big": 3}
        assert cache.counters.errors == 0
        assert cache.counters.corrupt == 1  # the old entry: found unreadable, removed
        assert cache.counters.uncacheable == 2  # the new result is not written
        assert cache.backend.client.exists(big.cache_key(1)) == 0  # type: ignore[attr-defined]
    finally:
        cache.close()
        for node in nodes:
            node.client().config_set("client-output-buffer-limit", "normal 0 0 0")
