"""Every key pmm_memo writes has a TTL: entries, locks, embedding cache and the shared
statistics (pmm_memo:stats:<tenant>), checked by SCANning every key after a mixed
workload on a real server."""

from __future__ import annotations

import asyncio

from pmm_memo import CacheManager, cached, semantic_lookup
from pmm_memo._shared_stats import STATS_PREFIX
from tests.conftest import make_cache
from tests.support.servers import ValkeyServer


def test_every_key_expires_after_a_mixed_workload(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url)
    try:

        @cached(tenant="ttl_db", cache=cache)
        def rows(n: int) -> list[int]:
            return list(range(n))

        @semantic_lookup(0.9, tenant="pmm_llm", cache=cache)
        def ask(prompt: str, user_id: str | None = None) -> str:
            return prompt.upper()

        @cached(tenant="ttl_async", cache=cache)
        async def aget(n: int) -> int:
            return n

        for i in range(20):
            rows(i)
            rows(i)
            ask(f"question number {i % 5}", user_id=f"u{i % 3}")
            asyncio.run(aget(i))
        manager = CacheManager(cache.config)
        manager.put_cache("pmm_bot", "u", "k1", "some text", ttl=60)
        manager.get_cache_stats()  # flushes the statistics
        manager.close()
        cache.stats.flush()
    finally:
        cache.close()
    client = search_server.client()
    keys = list(client.scan_iter(match="*", count=1000))
    assert any(k.decode().startswith(STATS_PREFIX) for k in keys)
    assert len(keys) > 20
    no_ttl = [k for k in keys if client.ttl(k) < 0]
    assert no_ttl == []
