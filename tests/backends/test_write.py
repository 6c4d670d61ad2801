"""The one-command entry write: atomic replace + TTL, NOSCRIPT recovery, and the
transaction fallback when the server refuses scripts (sync and async)."""

from __future__ import annotations

import asyncio

import pytest
import redis

from pmm_memo import cached
from pmm_memo.backends._write import _refused
from pmm_memo.backends.redis import RedisBackend
from tests.conftest import SLOW_MACHINE, make_cache
from tests.support.servers import ValkeyServer


def _backend(cache: object) -> RedisBackend:
    backend = cache.backend  # type: ignore[attr-defined]
    assert isinstance(backend, RedisBackend)
    return backend


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_write_is_one_script_call_that_replaces_the_hash_with_its_ttl(
    redis_url: str, search_server: ValkeyServer, mode: str
) -> None:
    cache = make_cache("redis", redis_url)
    client = search_server.client()

    if mode == "sync":

        @cached(tenant="t", ttl=120, cache=cache)
        def f(x: int) -> str:
            return "v" * x

        f(0)  # the script is loaded (EVAL after NOSCRIPT) by the first write
        key = f.cache_key(1)
        client.hset(key, mapping={"stale": b"left by an older entry"})
        commands = search_server.capture_commands(lambda: f(1))
    else:

        @cached(tenant="t", ttl=120, cache=cache)
        async def g(x: int) -> str:
            return "v" * x

        asyncio.run(g(0))
        key = g.cache_key(1)
        client.hset(key, mapping={"stale": b"left by an older entry"})
        commands = search_server.capture_commands(lambda: asyncio.run(g(1)))
        asyncio.run(cache.aclose())
    names = [c.split()[0] for c in commands]
    # MONITOR also lists the script's own UNLINK, HSET and PEXPIRE: once each.
    assert names.count("EVALSHA") == 1 and "EVAL" not in names and "MULTI" not in names, names
    assert [names.count(c) for c in ("UNLINK", "HSET", "PEXPIRE")] == [1, 1, 1], names
    fields = client.hgetall(key)
    assert b"stale" not in fields and fields[b"value"] == b"v"
    assert 0 < client.pttl(key) <= 120_000
    cache.close()


def test_a_flushed_script_cache_is_reloaded_not_a_failed_write(
    redis_url: str, search_server: ValkeyServer
) -> None:
    # Patient timeouts: this proves the NOSCRIPT reload, and a 0.25 s read timeout on a
    # loaded machine would count an error that has nothing to do with it.
    cache = make_cache("redis", redis_url, **SLOW_MACHINE)

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        return x

    async def af(x: int) -> int:
        return x

    g = cached(tenant="t", cache=cache)(af)
    client = search_server.client()
    for i in range(3):
        client.script_flush()
        assert f(i) == i and asyncio.run(g(i)) == i
    assert f.cache_info().errors == 0 and g.cache_info().errors == 0
    assert all(client.pttl(f.cache_key(i)) > 0 for i in range(3))
    assert all(client.pttl(g.cache_key(i)) > 0 for i in range(3))
    assert _backend(cache)._writer.scripts
    cache.close()


def test_without_script_permission_writes_use_a_transaction(
    redis_url: str, search_server: ValkeyServer
) -> None:
    admin = search_server.client()
    admin.acl_setuser(
        "noscripts",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        commands=["+@all", "-@scripting"],
    )
    try:
        url = redis_url.replace("redis://", "redis://noscripts:pw@")
        cache = make_cache("redis", url)

        @cached(tenant="t", ttl=60, cache=cache)
        def f(x: int) -> int:
            return x

        async def af(x: int) -> int:
            return -x

        g = cached(tenant="t", ttl=60, cache=cache)(af)
        assert f(1) == 1 and f(2) == 2 and asyncio.run(g(3)) == -3
        assert f(1) == 1 and f.cache_info().hits == 1 and f.cache_info().errors == 0
        assert asyncio.run(g(3)) == -3 and g.cache_info().hits == 1
        assert not _backend(cache)._writer.scripts
        for key in (f.cache_key(1), f.cache_key(2), g.cache_key(3)):
            assert 0 < admin.pttl(key) <= 60_000
        cache.close()
    finally:
        admin.acl_deluser("noscripts")


def test_only_a_refusal_of_scripts_switches_to_the_transaction() -> None:
    """Errors that fail one write (out of memory, a read-only replica) are raised and
    counted by the cache; only a refusal of scripts as such changes the write path."""
    refusals = [
        "NOPERM User noscripts has no permissions to run the 'evalsha' command",
        "ERR unknown command 'EVALSHA', with args beginning with: ",
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'",
    ]
    failures = [
        "OOM command not allowed when used memory > 'maxmemory'.",
        "READONLY You can't write against a read only replica.",
        "ERR Error running script (call to f_0123): @user_script:1: Script attempted to access "
        "a non local key in a cluster node",
    ]
    assert all(_refused(redis.ResponseError(m)) for m in refusals)
    assert _refused(redis.exceptions.NoPermissionError("User u has no permissions"))
    assert not any(_refused(redis.ResponseError(m)) for m in failures)


def test_only_entries_with_a_vector_carry_the_knn_filter_digests(
    redis_url: str, search_server: ValkeyServer
) -> None:
    """`part` (the KNN filter's digests) serves only the KNN; every index FILTERs on the
    embedder tag `emb`, so an entry without a vector is in no index and is written
    without them."""
    from pmm_memo import semantic_lookup

    cache = make_cache("redis", redis_url)
    client = search_server.client()

    @cached(tenant="t", cache=cache)
    def exact(x: int) -> str:
        return "v"

    @semantic_lookup(tenant="t", threshold=0.9, cache=cache)
    def ask(question: str) -> str:
        return "answer"

    exact(1)
    ask("what is the capital of France?")
    fields = client.hgetall(exact.cache_key(1))
    assert b"value" in fields and b"part" not in fields and b"emb" not in fields
    vectored = client.hgetall(ask.cache_key("what is the capital of France?"))
    assert b"emb" in vectored and b"part" in vectored and b"tenant_h" not in vectored
    assert ask("What is the capital of France ?") == "answer"
    assert ask.cache_info().semantic_hits == 1  # found by KNN through those digests
    cache.close()
