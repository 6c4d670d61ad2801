"""Redis backend against real Valkey processes: layout, TTLs, poisoning, outages."""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from pmm_memo import Cache, CacheConfig, cached
from pmm_memo._codec import checksum
from tests.conftest import make_cache, run
from tests.support.entry_meta import read_meta, write_meta
from tests.support.servers import ValkeyServer, free_port


class Custom:
    """Not JSON-codable: needs the pickle codec."""

    def __init__(self, v: int) -> None:
        self.v = v


def _all_keys_have_ttl(client: redis.Redis) -> bool:
    return all(client.pttl(k) > 0 for k in client.scan_iter(match="cache:*"))


def test_entry_layout_and_ttl(redis_url: str, search_server: ValkeyServer) -> None:
    cache = make_cache("redis", redis_url)

    @cached(tenant="pmm_llm", ttl=120, embed_key=True, cache=cache)
    def complete(prompt: str, user_id: str = "u1") -> str:
        return "answer"

    complete("What is Redis?")
    client = search_server.client()
    key = complete.cache_key("What is Redis?")
    fields = client.hgetall(key)
    assert fields[b"text"] == b"What is Redis?"
    assert fields[b"tenant"] == b"pmm_llm"
    assert fields[b"user"] == b"u1"
    assert abs(int(fields[b"created_at"]) - time.time()) < 5
    assert len(fields[b"embedding"]) == 64 * 4  # FLOAT32, dim 64
    assert fields[b"value"] == b"answer"
    meta = read_meta(client, key)
    assert (meta.fmt, meta.codec) == (b"2", b"str")
    assert meta.fn_name.endswith(b".test_entry_layout_and_ttl.<locals>.complete")
    # Only what the server indexes or updates stands alone; the rest is packed in `meta`.
    assert set(fields) == {b"text", b"tenant", b"user", b"created_at", b"embedding"} | {
        b"value",
        b"meta",
        b"text_h",
        b"emb",
        b"part",
    }
    assert 0 < client.ttl(key) <= 120
    assert _all_keys_have_ttl(client)


def test_exact_hit_is_one_hmget_without_embedding(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url)

    @cached(tenant="t", embed_key=True, cache=cache)
    def f(prompt: str) -> str:
        return prompt * 3

    f("abc")
    results: list[str] = []
    ours = search_server.capture_commands(lambda: results.append(f("abc")))
    assert results == ["abcabcabc"] and f.cache_info().hits == 1
    assert len(ours) == 1, ours
    assert ours[0].startswith("HMGET") and "embedding" not in ours[0]


def test_poisoned_entry_never_executes(
    redis_url: str, search_server: ValkeyServer, tmp_path: Path
) -> None:
    cache = make_cache("redis", redis_url)
    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    bomb = pickle.dumps(Bomb())

    @cached(tenant="t", cache=cache)
    def f(x: int) -> dict[str, int]:
        return {"x": x}

    assert f(1) == {"x": 1}
    key = f.cache_key(1)
    client = search_server.client()
    # A pickle with a checksum that matches: only the codec policy stands in the way.
    client.hset(key, "value", bomb)
    write_meta(client, key, codec=b"pickle", checksum=checksum(b"pickle", bomb))
    assert f(1) == {"x": 1}
    assert not marker.exists()
    assert f.cache_info().corrupt == 1
    assert read_meta(client, key).codec == b"json"  # overwritten by the recomputed result
    assert f(1) == {"x": 1} and f.cache_info().hits == 1
    # Every field a pickle: not an entry at all (no readable meta), a plain miss.
    fields = [k.decode() for k in client.hkeys(key)]
    client.hset(key, mapping={name: bomb for name in fields})
    assert f(1) == {"x": 1}
    assert not marker.exists()
    assert read_meta(client, key).codec == b"json"


def test_pickle_codec_requires_valid_signature(redis_url: str, search_server: ValkeyServer) -> None:
    cache = make_cache("redis", redis_url, codec="pickle", signing_key="k" * 32)

    @cached(tenant="t", cache=cache)
    def f(x: int) -> Custom:
        return Custom(x)

    assert f(1).v == 1
    assert f(1).v == 1 and f.cache_info().hits == 1
    key = f.cache_key(1)
    client = search_server.client()
    assert read_meta(client, key).codec == b"pickle"
    forged = pickle.dumps(Custom(99))  # re-pickled, old signature, a matching checksum
    client.hset(key, "value", forged)
    write_meta(client, key, checksum=checksum(b"pickle", forged))
    assert f(1).v == 1
    assert f.cache_info().corrupt == 1
    write_meta(client, f.cache_key(1), sig=b"")
    assert f(1).v == 1
    assert f.cache_info().corrupt == 2


def test_unstorable_result_is_returned_and_counted(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache("redis", redis_url)
    lock = threading.Lock()

    @cached(tenant="t", cache=cache)
    def f(x: int) -> Any:
        return lock

    assert f(1) is lock
    assert f(1) is lock
    info = f.cache_info()
    assert info.uncacheable == 2 and info.hits == 0
    assert sum("not stored" in r.message for r in caplog.records) == 1


def test_collision_check_rejects_foreign_entry(redis_url: str, search_server: ValkeyServer) -> None:
    cache = make_cache("redis", redis_url)

    @cached(tenant="t", cache=cache)
    def f(x: int) -> str:
        return f"real{x}"

    f(1)
    client = search_server.client()
    write_meta(client, f.cache_key(1), check=b"0000000000000000")  # as if another call collided
    assert f(1) == "real1"
    assert f.cache_info().corrupt == 1


def test_plain_valkey_exact_caching_works(plain_url: str) -> None:
    cache = make_cache("redis", plain_url)
    calls = []

    @cached(tenant="t", embed_key=True, cache=cache)
    def f(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    assert f("a") == f("a") == "a"
    assert calls == ["a"]


def test_async_on_redis(redis_url: str) -> None:
    cache = make_cache("redis", redis_url)
    calls = []

    @cached(tenant="t", cache=cache)
    async def f(x: int) -> list[float]:
        calls.append(x)
        return [x / 2]

    async def main() -> list[Any]:
        out = [await f(1), await f(1), await f(2)]
        await cache.aclose()
        return out

    assert run(main()) == [[0.5], [0.5], [1.0]]
    assert run(main()) == [[0.5], [0.5], [1.0]]  # a second event loop works too
    assert calls == [1, 2]


def test_closed_port_calls_are_fast_and_correct(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens here
    cache = Cache(
        CacheConfig(
            redis_url=f"redis://127.0.0.1:{port}/0", embedder="offline", embedding_dimensions=64
        )
    )
    calls = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        calls.append(x)
        return x * 2

    start = time.perf_counter()
    results = [f(i % 7) for i in range(60)]
    elapsed = time.perf_counter() - start
    assert results == [(i % 7) * 2 for i in range(60)]
    assert len(calls) == 60
    assert elapsed < 2.0  # breaker open after the first failure: no timeout per call
    assert f.cache_info().errors >= 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].message


def _private_server(tmp_path: Path) -> ValkeyServer:
    return ValkeyServer(search=False, log_dir=tmp_path).start()


def test_server_killed_mid_test_then_restarted(tmp_path: Path) -> None:
    server = _private_server(tmp_path)
    try:
        cache = make_cache("redis", server.url, breaker_interval=0.2)
        calls = []

        @cached(tenant="t", cache=cache)
        def f(x: int) -> int:
            calls.append(x)
            return x + 100

        assert f(1) == 101 and f(1) == 101 and len(calls) == 1
        server.kill()
        assert [f(1) for _ in range(20)] == [101] * 20
        assert f.cache_info().errors >= 1
        server.start()
        time.sleep(0.3)  # breaker interval passes
        assert f(1) == 101  # empty restarted server: recomputed and stored
        assert f(1) == 101
        assert f.cache_info().hits >= 2
    finally:
        server.stop()


def test_frozen_server_costs_bounded_time(tmp_path: Path) -> None:
    server = _private_server(tmp_path)
    try:
        cache = make_cache(
            "redis", server.url, socket_timeout=0.2, connect_timeout=0.2, breaker_interval=30
        )

        @cached(tenant="t", cache=cache)
        def f(x: int) -> int:
            return x

        f(0)
        server.freeze()
        start = time.perf_counter()
        assert [f(i) for i in range(50)] == list(range(50))
        elapsed = time.perf_counter() - start
        # One timeout (read) opens the breaker; every later call skips Redis.
        assert elapsed < 0.2 * 2 + 0.5
    finally:
        server.thaw()
        server.stop()


def test_oom_server_still_returns_results(tmp_path: Path) -> None:
    server = _private_server(tmp_path)
    try:
        client = server.client()
        client.config_set("maxmemory", "1mb")
        client.config_set("maxmemory-policy", "noeviction")
        cache = make_cache("redis", server.url)

        @cached(tenant="t", cache=cache)
        def f(x: int) -> str:
            return "v" * 10000 + str(x)

        results = [f(i) for i in range(300)]
        assert results == ["v" * 10000 + str(i) for i in range(300)]
        assert f.cache_info().errors >= 1
        assert _all_keys_have_ttl(client)
    finally:
        server.stop()


def test_numpy_results_round_trip(redis_url: str) -> None:
    cache = make_cache("redis", redis_url)

    @cached(tenant="t", cache=cache)
    def f(n: int) -> tuple[np.ndarray, bytes, set[int]]:
        return np.arange(n, dtype=np.float16).reshape(1, n), b"\x00raw", {1, 2}

    first = f(4)
    second = f(4)
    assert f.cache_info().hits == 1
    assert second[0].dtype == np.float16 and second[0].shape == (1, 4)
    assert np.array_equal(first[0], second[0])
    assert second[1:] == (b"\x00raw", {1, 2})
