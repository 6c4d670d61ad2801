"""A starved process is load, not an outage; a frozen or dead server is still an outage.

The starvation is made deterministic instead of waiting for a loaded machine: one task
blocks the event loop with `time.sleep` slices longer than the connect timeout while
hundreds of tasks connect on a cold pool, so every connect's timer fires before the loop
can see the finished handshake (what 2,000 runnable tasks on two busy cores do).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmm_memo import Cache, CacheInfo, cached
from pmm_memo.backends._evidence import ProbeKey, server_answered_since
from tests.conftest import make_cache
from tests.support.servers import ValkeyServer, free_port

KEYS = 60
TASKS = 300


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(search=False, log_dir=tmp_path).start()
    yield server
    server.thaw()
    server.stop()


def _key(port: int, timeout: float = 0.5) -> ProbeKey:
    return ("127.0.0.1", port, "", False, timeout)


async def _hog(slices: int, seconds: float) -> None:
    """Hold the event loop `slices` times for `seconds` (a CPU-bound neighbour task)."""
    for _ in range(slices):
        await asyncio.sleep(0)
        time.sleep(seconds)


def _starved_burst(cache: Cache, slices: int) -> tuple[Counter[int], list[bool], CacheInfo]:
    calls: Counter[int] = Counter()

    @cached(tenant="starved", cache=cache)
    async def f(k: int) -> str:
        calls[k] += 1
        return f"v{k}"

    async def main() -> list[bool]:
        try:
            callers = [f(i % KEYS) for i in range(TASKS)]
            # The hog comes last: every caller has started its connect before it blocks.
            *results, _ = await asyncio.gather(*callers, _hog(slices, 0.3))
            return [r == f"v{i % KEYS}" for i, r in enumerate(results)]
        finally:
            await cache.aclose()

    ok = asyncio.run(main())
    return calls, ok, f.cache_info()


@pytest.mark.slow
def test_connects_on_a_starved_loop_are_not_an_outage(redis_url: str) -> None:
    # Connect timeout 0.1 s; the loop is held 0.3 s at a time, five times: before the
    # fix every connect timed out with no reply seen yet and the breaker opened.
    cache = make_cache("redis", redis_url, connect_timeout=0.1, socket_timeout=5.0)
    calls, ok, info = _starved_burst(cache, slices=5)
    assert all(ok)
    assert (info.errors, cache.breaker.is_open) == (0, False)
    assert info.misses == KEYS and set(calls.values()) == {1}


@pytest.mark.slow
def test_a_frozen_server_on_a_starved_loop_is_still_an_outage(
    private_server: ValkeyServer,
) -> None:
    cache = make_cache(
        "redis",
        private_server.url,
        connect_timeout=0.1,
        socket_timeout=0.1,
        pool_timeout=60.0,
        breaker_interval=60.0,
    )
    private_server.freeze()
    start = time.perf_counter()
    _calls, ok, info = _starved_burst(cache, slices=3)
    elapsed = time.perf_counter() - start
    assert all(ok)  # the function answered every call
    assert cache.breaker.is_open and info.errors >= 1
    # The probe found no reply: nobody waited out CACHE_POOL_TIMEOUT (60 s) retrying.
    assert elapsed < 30


def test_probe_answers_for_a_healthy_server(private_server: ValkeyServer) -> None:
    assert server_answered_since(_key(private_server.port), time.monotonic())


def test_probe_sends_no_credentials_and_a_refusal_is_an_answer(tmp_path: Path) -> None:
    server = ValkeyServer(
        search=False, log_dir=tmp_path, extra_args=("--requirepass", "probe-secret")
    ).start()
    try:
        # -NOAUTH is the server speaking: it is up.
        assert server_answered_since(_key(server.port), time.monotonic())
    finally:
        server.stop()


def test_probe_finds_no_answer_from_a_frozen_or_dead_server(
    private_server: ValkeyServer,
) -> None:
    private_server.freeze()
    assert not server_answered_since(_key(private_server.port, 0.2), time.monotonic())
    private_server.thaw()
    assert server_answered_since(_key(private_server.port, 0.2), time.monotonic())
    assert not server_answered_since(_key(free_port(), 0.2), time.monotonic())


def test_a_probe_result_is_reused_only_by_waits_that_began_before_it(
    private_server: ValkeyServer,
) -> None:
    key = _key(private_server.port, 0.2)
    before = time.monotonic()
    assert server_answered_since(key, before)
    private_server.freeze()
    assert server_answered_since(key, before)  # that probe began after this wait began
    assert not server_answered_since(key, time.monotonic())  # a later wait probes again
