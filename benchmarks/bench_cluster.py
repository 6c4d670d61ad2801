"""Redis Cluster beside a single node, in one run on the same machine.

    python3 benchmarks/bench_cluster.py [--entries 30000] [--dim 384] [--calls 4000]

Starts a 3-primary Valkey cluster and one Valkey (both with RediSearch, from the PyPI
packages) and prints:
- exact hit: pmm_memo @cached on the cluster vs a raw redis-py cluster-client HMGET of
  the same entry's fields; the same pair on the single node (interleaved rounds, the
  ratio is the median of the per-round ratios);
- bulk load: entries/s through `set_many(bulk=True)` into each deployment (FLAT index);
- semantic lookup (KNN k=1 with the winner's fields and value, what a semantic hit
  reads from storage): cluster (scatter to 3 primaries + fetch) vs the single node with
  the same N entries, and recall@1 of both against exact (numpy) ground truth.

What 2 cores cannot show: three shards here share two cores with the client, so the
cluster has no more CPU than the single node; on real hardware each shard brings its own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import redis.cluster

from benchmarks._util import alternating, ratio_of_rounds, row
from pmm_memo import Cache, CacheConfig, cached
from pmm_memo.backends._base import Entry, VectorQuery
from tests.support.servers import ValkeyCluster, ValkeyServer

ARGS = ("What is the capital of France?", "gpt-4o-mini", 0.0)


def exact(url: str, raw: Any, calls: int, label: str) -> None:
    cache = Cache(CacheConfig(redis_url=url, embedder="offline"))
    payload = "x" * 1000

    @cached(tenant="bench", cache=cache)
    def pmm(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
        return payload

    pmm(*ARGS)
    key = pmm.cache_key(*ARGS)
    fields = cache.backend._read_fields  # type: ignore[attr-defined]
    raw.hmget(key, fields)
    before = pmm.cache_info()
    ours, base = alternating(lambda: pmm(*ARGS), lambda: raw.hmget(key, fields), calls, 10)
    after = pmm.cache_info()
    assert after.misses == before.misses, after
    print(f"\n{label}: exact hit, 1000-byte result ({calls} calls each, all hits, sync)")
    print(row("pmm_memo @cached", [x for s in ours for x in s]))
    print(row("raw HMGET of the same fields", [x for s in base for x in s]))
    print(f"  median per-round ratio pmm/raw: {ratio_of_rounds(ours, base):.2f}x")
    cache.close()


def semantic(url: str, vectors: np.ndarray, queries: np.ndarray, label: str) -> list[float]:
    dim = vectors.shape[1]
    cache = Cache(
        CacheConfig(
            redis_url=url,
            embedder="offline",
            embedding_dimensions=dim,
            vector_algorithm="FLAT",
            batch_size=500,
        )
    )
    backend: Any = cache.backend
    # Vectors are stored (and searched) only with their embedder's label, as the cache
    # writes them; without it the index would not see them.
    emb_label = cache.embedder_id.label
    entries = [
        Entry(
            key=f"cache:bench:{i:032x}",
            value=f"answer {i}",
            check="c",
            tenant="bench",
            user="",
            fn="fn",
            fn_name="fn",
            created_at=time.time(),
            scope="s",
            embedding=v,
            embedder=emb_label,
        )
        for i, v in enumerate(vectors)
    ]
    backend.ensure_index()
    start = time.perf_counter()
    written = backend.set_many(entries, 3_600_000, bulk=True)
    load = time.perf_counter() - start
    print(f"\n{label}: bulk load {written} entries ({dim}-d, FLAT): {written / load:,.0f}/s")
    # Wait until the index has every entry (indexing is synchronous in HSET, but be sure).
    deadline = time.monotonic() + 120
    while (backend.index_info() or {}).get("num_docs", 0) < written:
        assert time.monotonic() < deadline, "index never caught up"
        time.sleep(0.2)
    truth = np.argmax(queries @ vectors.T, axis=1)
    hits = 0
    samples: list[float] = []
    for q, best in zip(queries, truth, strict=True):
        query = VectorQuery("bench", q, 1, fn="fn", scope="s", embedder=emb_label, with_text=False)
        t0 = time.perf_counter()
        found = backend.knn(query)
        samples.append(time.perf_counter() - t0)
        hits += bool(found) and found[0].key == entries[best].key
    print(row(f"KNN k=1 + winner's value, N={written}", samples))
    print(f"  recall@1 vs exact ground truth: {hits / len(queries):.3f}")
    cache.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=30_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args(argv)
    began = time.monotonic()
    rng = np.random.default_rng(42)
    vectors = rng.standard_normal((args.entries, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Queries near stored entries (a paraphrase), like semantic hits.
    picks = rng.choice(args.entries, args.queries, replace=False)
    queries = vectors[picks] + 0.05 * rng.standard_normal((args.queries, args.dim)).astype(
        np.float32
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = ValkeyCluster(Path(tmp)).start()
        single = ValkeyServer(search=True, log_dir=Path(tmp)).start()
        try:
            first = cluster.nodes[0]
            raw_cluster = redis.cluster.RedisCluster(host="127.0.0.1", port=first.port, protocol=2)
            exact(cluster.url, raw_cluster, args.calls, "cluster (3 primaries)")
            exact(single.url, single.client(), args.calls, "single node")
            raw_cluster.close()
            c = semantic(cluster.url, vectors, queries, "cluster (3 primaries)")
            s = semantic(single.url, vectors, queries, "single node")
            ratio = float(np.median(c)) / float(np.median(s))
            print(f"\nsemantic lookup, cluster/single median ratio: {ratio:.2f}x")
            print(f"(whole run: {time.monotonic() - began:.0f} s)")
        finally:
            single.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
