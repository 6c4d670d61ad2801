"""A process in the stampede tests: N threads call one decorated function at time T0.

    python -m tests.support.stampede_worker URL THREADS T0 SLEEP LOCK_TTL
Prints one JSON line: the results its threads got. The function counts its own calls in
Redis (INCR stampede:calls), so the parent can count calls across processes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import redis
import redis.cluster

from pmm_memo import Cache, CacheConfig, cached


def main() -> None:
    url, threads, t0, sleep, lock_ttl = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        float(sys.argv[4]),
        float(sys.argv[5]),
    )
    counter: Any
    if url.startswith("redis+cluster://"):
        host, _, port = url.partition("://")[2].split(",")[0].rpartition(":")
        counter = redis.cluster.RedisCluster(host=host, port=int(port))
    else:
        counter = redis.Redis.from_url(url)
    cache = Cache(CacheConfig(redis_url=url, embedder="offline", lock_ttl=lock_ttl, lock_wait=30))

    # The pause is an ignored argument: captured values and module-level data the
    # function reads are part of its identity, and the owner and follower processes
    # (different pauses) must compute the same key.
    @cached(tenant="pmm_llm", cache=cache, ignore=("pause",))
    def expensive(prompt: str, pause: float) -> str:
        n = counter.incr("stampede:calls")
        time.sleep(pause)
        return f"answer #{n} to {prompt}"

    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        time.sleep(max(0.0, t0 - time.time()))
        value = expensive("cold key", sleep)
        with lock:
            results.append(value)

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"results": results, "info": expensive.cache_info()._asdict()}))


if __name__ == "__main__":
    main()
