"""Semantic lookup: latency beside a raw FT.SEARCH KNN, bulk load, memory, recall.

    python3 benchmarks/bench_semantic.py [--redis-url URL] [--sizes 1000,10000,100000]

For each size (entries spread over 10 tenants, 1536-d synthetic unit vectors) and each
index algorithm (FLAT, HNSW):
- bulk-load throughput (RedisBackend.set_many, entries with their TTL);
- semantic hit latency through @semantic_lookup (embedding already available: the
  embedder is a dictionary of precomputed vectors) beside a raw redis-py FT.SEARCH with
  the same KNN query and filters on the same server, through a client with the same
  settings (RESP2), interleaved; ratio = median of per-round ratios. A semantic hit is
  an exact-miss HMGET followed by the KNN, so its floor is the raw KNN plus one round
  trip;
- near-duplicate recall with the tenant filter on: queries are stored vectors plus noise
  (cosine ~0.97 to their original); recall = the original is the top hit. HNSW is also
  measured with RediSearch's default EF_RUNTIME (10) to show why the default is raised.
Then server memory per entry for FLOAT32 vs FLOAT16, and the embedded backend's lookup
beside a bare numpy matrix-vector top-1 over the same matrix.
Without --redis-url a Valkey + RediSearch server is started from the PyPI packages.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import per_call_samples, redis_server, row
from pmm_memo import Cache, CacheConfig, semantic_lookup
from pmm_memo.backends._base import Entry
from pmm_memo.backends.redis import RedisBackend, _command
from pmm_memo.embedders._base import BaseEmbedder

DIM = 1536
TENANTS = 10
QUERIES = 200


class Precomputed(BaseEmbedder):
    """Texts are keys into a table of vectors: an embedding that costs nothing."""

    name = "precomputed"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        super().__init__(DIM, 1000)
        self.table = table

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    async def _aembed_batch(self, texts: list[str]) -> object:
        return self._embed_batch(texts)


VECTORS = "structured"  # or "random" (--vectors)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors. "structured": a 64-d latent projected to DIM plus noise, so vectors
    have neighbours (nearest other at cosine ~0.44), as text embeddings do; "random":
    uniformly random directions, the worst case for a graph index."""
    if VECTORS == "random":
        v = rng.standard_normal((n, DIM)).astype(np.float32)
    else:
        proj = np.random.default_rng(99).standard_normal((64, DIM)).astype(np.float32)
        latent = rng.standard_normal((n, 64)).astype(np.float32)
        v = latent @ proj + 0.3 * rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(rng: np.random.Generator, v: np.ndarray, cos: float = 0.97) -> np.ndarray:
    noise = unit(rng, len(v))
    noise -= (noise * v).sum(axis=1, keepdims=True) * v  # orthogonal to v
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = cos * v + np.sqrt(1 - cos**2) * noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def label(kind: str, i: int) -> str:
    """A digit-free text per index ("query bh" for 17): the default `numbers` guard vetoes
    candidates whose numbers differ, so numbered texts would never hit each other."""
    return f"{kind} " + str(i).translate(_LETTERS)


_LETTERS = str.maketrans("0123456789", "abcdefghij")

MISS = "<miss>"


def _is_miss(result: object) -> bool:
    return result == MISS


def decorated(cache: Cache) -> list[Any]:
    funcs = []
    for t in range(TENANTS):

        @semantic_lookup(threshold=0.9, tenant=f"tenant{t}", cache=cache, unless=_is_miss)
        def answer(prompt: str) -> str:
            return MISS  # a miss: counted by cache_info(), never stored

        funcs.append(answer)
    return funcs


def build_entries(funcs: list[Any], cache: Cache, vectors: np.ndarray) -> list[Entry]:
    entries = []
    for i, vec in enumerate(vectors):
        memo = funcs[i % TENANTS]._memo()
        call = memo.keys.bind((label("stored", i),), {}, False)
        key, check = memo.key_of(cache, call)
        entries.append(memo.entry(cache, call, key, check, f"answer {i}", vec))
    return entries


def wait_indexed(client: redis.Redis, index: str, size: int) -> None:
    """Until `index` holds `size` documents and has caught up (FT.INFO, RESP2 or RESP3)."""
    while True:
        info = client.execute_command("FT.INFO", index)
        if not isinstance(info, dict):
            info = {info[k]: info[k + 1] for k in range(0, len(info) - 1, 2)}
        if int(info[b"num_docs"]) >= size and not int(info.get(b"indexing", 0)):
            return
        time.sleep(0.05)


def bulk_load(
    cache: Cache, vectors: np.ndarray, client: redis.Redis
) -> tuple[RedisBackend, list[Any], list[Entry], float]:
    """One entry per vector (tenants in turn) written in bulk, as `build_entries` makes
    them; the seconds until `client` sees the index caught up."""
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    funcs = decorated(cache)
    entries = build_entries(funcs, cache, vectors)
    start = time.perf_counter()
    backend.set_many(entries, 3_600_000, bulk=True)
    assert backend.index is not None
    wait_indexed(client, backend.index.name, len(entries))
    return backend, funcs, entries, time.perf_counter() - start


def raw_knn_args(
    backend: RedisBackend,
    funcs: list[Any],
    cache: Cache,
    t: int,
    vec: np.ndarray,
    ef: int | None = None,
) -> list[Any]:
    """The exact FT.SEARCH the decorator sends (optionally with another EF_RUNTIME)."""
    memo = funcs[t]._memo()
    call = memo.keys.bind(("q",), {}, False)
    args = backend._knn_args(memo.query(cache, call, memo.semantic_of(cache, call), vec))
    if ef is not None and "EF_RUNTIME $ef" in args[2]:
        args = [args[0], args[1], args[2].replace("EF_RUNTIME $ef", f"EF_RUNTIME {ef}"), *args[3:]]
    return args


def bench_redis(url: str, size: int, algorithm: str, rng: np.random.Generator) -> None:
    client = redis.Redis.from_url(url, protocol=2)  # the protocol pmm_memo's client uses
    client.flushall()
    vectors = unit(rng, size)
    picks = rng.choice(size, QUERIES, replace=False)
    queries = near(rng, vectors[picks])
    table = {label("query", j): q for j, q in enumerate(queries)}
    cache = Cache(
        CacheConfig(redis_url=url, vector_algorithm=algorithm, batch_size=500),
        embedder=Precomputed(table),
    )
    backend, funcs, entries, load = bulk_load(cache, vectors, client)
    print(
        f"\n{algorithm}, {size} entries ({TENANTS} tenants): bulk load "
        f"{size / load:,.0f} entries/s ({load:.1f}s, index caught up)"
    )

    # Recall with the tenant (and function/scope/user) filter on.
    def recall(ef: int | None) -> float:
        found = 0
        for j, i in enumerate(picks):
            t = int(i) % TENANTS
            reply = _command(client, *raw_knn_args(backend, funcs, cache, t, queries[j], ef))
            docs = reply[b"results"] if isinstance(reply, dict) else reply[1::2]
            first = (
                docs[0][b"id"] if docs and isinstance(docs[0], dict) else (docs[0] if docs else b"")
            )
            found += first.decode() == entries[i].key
        return found / QUERIES

    line = f"  near-duplicate recall@1 (tenant filter on): {recall(None):.3f}"
    if algorithm == "HNSW":
        line += (
            f" with EF_RUNTIME {cache.config.hnsw_ef_runtime}; {recall(10):.3f} with EF_RUNTIME 10 "
            f"(RediSearch's default)"
        )
    print(line)

    # Latency: a semantic hit through the decorator vs the same raw KNN, interleaved.
    hits_before = sum(f.cache_info().semantic_hits for f in funcs)
    ours: list[list[float]] = []
    raw: list[list[float]] = []
    for r in range(10):
        o_round: list[float] = []
        b_round: list[float] = []
        for j in range(r, QUERIES, 10):
            t = int(picks[j]) % TENANTS
            fn = funcs[t]
            text = label("query", j)
            args = raw_knn_args(backend, funcs, cache, t, queries[j])
            pair = [
                lambda fn=fn, text=text: per_call_samples(lambda: fn(text), 1, 1),
                lambda args=args: per_call_samples(lambda: _command(client, *args), 1, 1),
            ]
            if j % 2:
                b, a = pair[1](), pair[0]()
            else:
                a, b = pair[0](), pair[1]()
            o_round += a
            b_round += b
        ours.append(o_round)
        raw.append(b_round)
    hits = sum(f.cache_info().semantic_hits for f in funcs) - hits_before
    ratio = statistics.median(
        statistics.median(a) / statistics.median(b) for a, b in zip(ours, raw, strict=True)
    )
    print(
        row(
            "@semantic_lookup semantic hit",
            [x for s in ours for x in s],
            f"({hits}/{QUERIES} were semantic hits)",
        )
    )
    print(row("raw FT.SEARCH KNN, same query", [x for s in raw for x in s]))
    print(f"  median per-round ratio: {ratio:.2f}x")
    cache.close()


def memory_per_entry(rng: np.random.Generator, n: int = 10000) -> None:
    """Each vector type on a fresh server: freed memory is returned to the allocator
    lazily, so a FLUSHALL before measuring would skew the figure."""
    print(f"\nServer memory per entry ({n} entries, HNSW, text ~10 chars, value ~10 bytes):")
    for vtype in ("FLOAT32", "FLOAT16"):
        with redis_server(None) as url:
            client = redis.Redis.from_url(url)
            cache = Cache(
                CacheConfig(redis_url=url, vector_type=vtype, batch_size=500),
                embedder=Precomputed({}),
            )
            funcs = decorated(cache)
            cache.backend.ensure_index()  # type: ignore[attr-defined]  # (empty) index first
            before = int(client.info("memory")["used_memory"])
            cache.backend.set_many(build_entries(funcs, cache, unit(rng, n)), 3_600_000, bulk=True)
            after = int(client.info("memory")["used_memory"])
            print(f"  {vtype}: {(after - before) / n:,.0f} bytes per entry (hash + vector index)")
            cache.close()


def bench_memory(sizes: Sequence[int], rng: np.random.Generator) -> None:
    print("\nEmbedded backend: semantic hit beside a bare numpy top-1 over the same matrix")
    for size in sizes:
        vectors = unit(rng, size)
        picks = rng.choice(size, QUERIES, replace=False)
        queries = near(rng, vectors[picks])
        table = {label("query", j): q for j, q in enumerate(queries)}
        cache = Cache(
            CacheConfig(memory_max_entries=size * 2, memory_max_bytes=2**34),
            embedder=Precomputed(table),
        )

        @semantic_lookup(threshold=0.9, tenant="t", cache=cache, unless=_is_miss)
        def answer(prompt: str) -> Any:
            return MISS

        memo = answer._memo()
        entries = []
        for i, vec in enumerate(vectors):
            call = memo.keys.bind((label("stored", i),), {}, False)
            key, check = memo.key_of(cache, call)
            entries.append(memo.entry(cache, call, key, check, i, vec))
        cache.backend.set_many(entries, 3_600_000, bulk=True)
        (part,) = cache.backend._partitions.values()  # type: ignore[attr-defined]
        matrix = part.matrix[: part.n]
        ours: list[float] = []
        bare: list[float] = []
        correct = misses = 0
        for j in range(QUERIES):
            q = queries[j]
            text = label("query", j)
            t0 = time.perf_counter()
            got = answer(text)
            t1 = time.perf_counter()
            int(np.argmax(matrix @ q))
            t2 = time.perf_counter()
            ours.append(t1 - t0)
            bare.append(t2 - t1)
            correct += got == int(picks[j])
            misses += got == MISS
            answer.invalidate(text)
        ratio = statistics.median(ours) / statistics.median(bare)
        print(
            f"  {size:>7} entries: ours {statistics.median(ours) * 1e6:9.1f} us, numpy "
            f"{statistics.median(bare) * 1e6:9.1f} us, ratio {ratio:.2f}x, "
            f"{correct}/{QUERIES} correct hits"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--algorithms", default="FLAT,HNSW")
    parser.add_argument("--vectors", choices=["structured", "random"], default="structured")
    parser.add_argument(
        "--only",
        default="redis,memory,embedded",
        help="parts to run: redis, memory (per entry), embedded",
    )
    args = parser.parse_args(argv)
    global VECTORS
    VECTORS = args.vectors
    print(f"vectors: {VECTORS}, {DIM}-d; queries: stored vectors + noise (cosine 0.97)")
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(7)
    parts = set(args.only.split(","))
    if "redis" in parts:
        with redis_server(args.redis_url) as url:
            for size in sizes:
                for algorithm in args.algorithms.split(","):
                    bench_redis(url, size, algorithm, rng)
    if "memory" in parts:
        memory_per_entry(rng)
    if "embedded" in parts:
        bench_memory(sizes, rng)


if __name__ == "__main__":
    main()
