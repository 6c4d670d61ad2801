"""The semantic rows of benchmarks/peers.py: hits beside RedisVL and raw FT.SEARCH,
server memory per entry, and the index algorithm at 10k entries.

Vectors, entries and the precomputed embedder come from bench_semantic (1536-d
embedding-like unit vectors, entries over 10 tenants, queries = stored vectors + noise at
cosine 0.97), so both scripts measure the same workload.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import redis

from benchmarks._interleave import Line, Table, interleaved, timed_calls
from benchmarks._util import redis_server
from benchmarks.bench_semantic import (
    DIM,
    TENANTS,
    Precomputed,
    bulk_load,
    decorated,
    label,
    near,
    raw_knn_args,
    unit,
    wait_indexed,
)
from pmm_memo import Cache, CacheConfig
from pmm_memo.backends.redis import _READ_FIELDS, RedisBackend, _command

PATIENT = {"socket_timeout": 10.0, "connect_timeout": 10.0}  # see peers.py
PROMPT = "stored question number {i}: how do I configure the cache for tenant {t}?"
RESPONSE = "answer {i}: " + "set CACHE_REDIS_URL and decorate the function. " * 4


def _patient_search(client: redis.Redis) -> None:
    """RediSearch fails a query after 500 ms by default; on a loaded machine a 10k-entry
    VECTOR_RANGE can take that long, and a failed timed call would end the run."""
    client.execute_command("FT.CONFIG", "SET", "TIMEOUT", 10_000)


def _load_pmm(url: str, vectors: np.ndarray, table: dict[str, np.ndarray], **cfg: Any):
    config = CacheConfig(redis_url=url, batch_size=500, **PATIENT, **cfg)
    cache = Cache(config, embedder=Precomputed(table))
    with redis.Redis.from_url(url, protocol=2, socket_timeout=120) as patient:
        backend, funcs, entries, seconds = bulk_load(cache, vectors, patient)
    return cache, backend, funcs, entries, seconds


def _redisvl(url: str, name: str, table: dict[str, np.ndarray]) -> Any:
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    return SemanticCache(
        name=name,
        redis_url=url,
        # Texts are keys into precomputed vectors (a dimension probe gets a zero vector).
        vectorizer=CustomVectorizer(
            embed=lambda text: table[text].tolist() if text in table else [0.0] * DIM
        ),
        ttl=3600,
        distance_threshold=0.1,  # cosine similarity 0.9, pmm_memo's threshold here
        filterable_fields=[{"name": "tenant", "type": "tag"}],
    )


def _captured_search(rvl: Any, action: Callable[[], Any]) -> list[Any]:
    """The FT.SEARCH arguments RedisVL sends during `action` (to replay them raw)."""
    client = rvl._index.client
    original = client.execute_command
    seen: list[tuple[Any, ...]] = []

    def capture(*args: Any, **kwargs: Any) -> Any:
        seen.append(args)
        return original(*args, **kwargs)

    client.execute_command = capture
    try:
        action()
    finally:
        client.execute_command = original
    return list(next(a for a in seen if a[0] == "FT.SEARCH"))


def _one_round_trip(client: redis.Redis, *commands: tuple[Any, ...]) -> list[Any]:
    """Several commands written at once on one pooled connection, their replies read in
    order: the cheapest way redis-py can send them (no pipeline object)."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        return [connection.read_response() for _ in commands]
    finally:
        pool.release(connection)


def _cycle(fns: list[Callable[[], Any]]) -> Callable[[], Any]:
    it = itertools.cycle(fns)
    return lambda: next(it)()


def bench_semantic(table: Table, url: str, args: argparse.Namespace) -> None:
    from redisvl.query.filter import Tag

    rng = np.random.default_rng(7)
    client = redis.Redis.from_url(url, protocol=2)  # the protocol pmm_memo's client uses
    _patient_search(client)
    for size in [int(s) for s in args.sizes.split(",")]:
        client.flushall()
        vectors = unit(rng, size)
        picks = rng.choice(size, args.queries, replace=False)
        queries = near(rng, vectors[picks])
        texts = {label("query", j): q for j, q in enumerate(queries)}
        cache, backend, funcs, _, _ = _load_pmm(url, vectors, texts)
        rvl = _redisvl(url, "rvl", texts)
        pipe = client.pipeline(transaction=False)
        for i, vec in enumerate(vectors):  # the fields RedisVL's store() writes, pipelined
            pipe.hset(
                f"rvl:{i}",
                mapping={
                    "entry_id": str(i),
                    "prompt": label("stored", i),
                    "response": f"answer {i}",
                    "prompt_vector": vec.astype(np.float32).tobytes(),
                    "inserted_at": time.time(),
                    "updated_at": time.time(),
                    "tenant": f"tenant{i % TENANTS}",
                },
            )
            pipe.expire(f"rvl:{i}", 3600)
        pipe.execute()
        wait_indexed(client, "rvl", size)

        pmm_calls, floor_calls, both_calls, rvl_calls, rvl_raw_calls = [], [], [], [], []
        together_calls = []
        for j, i in enumerate(picks):
            t = int(i) % TENANTS
            fn, text = funcs[t], label("query", j)
            knn = raw_knn_args(backend, funcs, cache, t, queries[j])
            exact_key = fn.cache_key(text)
            vec_list = queries[j].tolist()
            flt = Tag("tenant") == f"tenant{t}"
            expected = f"answer {int(i)}"

            def rvl_check(vec_list=vec_list, flt=flt, expected=expected, rvl=rvl) -> None:
                hit = rvl.check(vector=vec_list, filter_expression=flt)
                assert hit and hit[0]["response"] == expected, "RedisVL: not the semantic hit"

            rvl_args = _captured_search(rvl, rvl_check)
            pmm_calls.append(lambda fn=fn, text=text: fn(text))
            floor_calls.append(lambda knn=knn: _command(client, *knn))
            both_calls.append(
                lambda knn=knn, k=exact_key: (
                    client.hmget(k, _READ_FIELDS),
                    _command(client, *knn),
                )
            )
            together_calls.append(
                lambda knn=knn, k=exact_key: _one_round_trip(
                    client, ("HMGET", k, *_READ_FIELDS), tuple(knn)
                )
            )
            rvl_calls.append(rvl_check)
            rvl_raw_calls.append(lambda a=rvl_args: _command(client, *a))
        hits = sum(f.cache_info().semantic_hits for f in funcs)
        misses = sum(f.cache_info().misses for f in funcs)
        contenders = {
            "raw FT.SEARCH (pmm_memo's KNN query)": _cycle(floor_calls),
            "pmm_memo @semantic_lookup": _cycle(pmm_calls),
            "raw HMGET + FT.SEARCH (exact check, then KNN)": _cycle(both_calls),
            "raw HMGET + FT.SEARCH in one round trip": _cycle(together_calls),
            "RedisVL SemanticCache.check": _cycle(rvl_calls),
            "raw FT.SEARCH (RedisVL's query)": _cycle(rvl_raw_calls),
        }
        results = interleaved(contenders, calls=args.queries, batch=1, repeats=args.repeats)
        n = timed_calls(args.queries, 1, args.repeats)
        assert sum(f.cache_info().semantic_hits for f in funcs) - hits == n, "not all semantic"
        assert sum(f.cache_info().misses for f in funcs) == misses
        limit = 1.5 if size <= 1000 else 1.1
        path = f"semantic hit, {size:,} entries, {TENANTS} tenants"
        print(f"\n{path} ({n} calls each; every pmm_memo and RedisVL call a verified hit)")
        table.add_row(
            path,
            {k: v for k, v in results.items() if "RedisVL's query" not in k},
            "raw FT.SEARCH (pmm_memo's KNN query)",
            {"pmm_memo @semantic_lookup": (f"≤ {limit:g}x FT.SEARCH", limit)},
        )
        path = f"KNN query alone, {size:,} entries"
        table.add_row(
            path,
            {
                "raw FT.SEARCH (RedisVL's query)": results["raw FT.SEARCH (RedisVL's query)"],
                "raw FT.SEARCH (pmm_memo's KNN query)": results[
                    "raw FT.SEARCH (pmm_memo's KNN query)"
                ],
            },
            "raw FT.SEARCH (RedisVL's query)",
            {"raw FT.SEARCH (pmm_memo's KNN query)": ("≤ 1.0x RedisVL's", 1.0)},
        )
        cache.close()
    client.close()


def bench_index(table: Table, url: str, args: argparse.Namespace, size: int = 10_000) -> None:
    """FLAT and HNSW side by side on one server (two indexes, two key prefixes): bulk load
    time until indexed, then the filtered KNN query interleaved, with recall@1."""
    rng = np.random.default_rng(11)
    client = redis.Redis.from_url(url, protocol=2)
    _patient_search(client)
    client.flushall()
    vectors = unit(rng, size)
    picks = rng.choice(size, args.queries, replace=False)
    queries = near(rng, vectors[picks])
    loaded = {}
    for algorithm in ("FLAT", "HNSW"):
        low = algorithm.lower()
        loaded[algorithm] = _load_pmm(
            url,
            vectors,
            {},
            vector_algorithm=algorithm,
            index_name=f"idx:{low}",
            key_prefix=f"{low}:",
        )
    path = f"index algorithm, {size:,} entries, {TENANTS} tenants"
    print(f"\n{path}")
    flat_load = loaded["FLAT"][4]
    for algorithm, (*_, seconds) in loaded.items():
        table.add(
            Line(
                path + ": bulk load until indexed",
                algorithm,
                seconds,
                None,
                seconds / flat_load,
                "FLAT",
                unit="seconds",
            )
        )
    contenders: dict[str, Callable[[], Any]] = {}
    for algorithm, (cache, backend, funcs, entries, _) in loaded.items():
        calls = []
        found = 0
        for j, i in enumerate(picks):
            t = int(i) % TENANTS
            knn = raw_knn_args(backend, funcs, cache, t, queries[j])
            reply = _command(client, *knn)
            found += bool(reply[0]) and reply[1].decode() == entries[int(i)].key
            calls.append(lambda knn=knn: _command(client, *knn))
        contenders[f"{algorithm} (recall@1 {found / len(picks):.3f})"] = _cycle(calls)
    results = interleaved(contenders, calls=args.queries, batch=1, repeats=args.repeats)
    table.add_row(path + ": filtered KNN query", results, next(iter(contenders)))
    for cache, *_ in loaded.values():
        cache.close()
    client.close()


def bench_server_memory(table: Table, args: argparse.Namespace) -> None:
    """used_memory growth per entry, each contender on a fresh server (freed memory goes
    back to the allocator lazily, so sharing one server would skew the figures). Same
    prompts, responses and 1536-d vectors for both."""
    n = args.memory_entries
    vectors = unit(np.random.default_rng(5), n)
    prompts = [PROMPT.format(i=i, t=i % TENANTS) for i in range(n)]
    responses = [RESPONSE.format(i=i) for i in range(n)]
    path = f"server memory per {DIM}-d entry ({n:,} entries)"
    print(f"\n{path}")
    per: dict[str, float] = {}
    for who in ("RedisVL SemanticCache", "pmm_memo"):
        with redis_server(None) as url:
            client = redis.Redis.from_url(url, protocol=2)
            if who == "pmm_memo":
                table_ = {p: v for p, v in zip(prompts, vectors, strict=True)}
                config = CacheConfig(redis_url=url, batch_size=500, **PATIENT)
                cache = Cache(config, embedder=Precomputed(table_))
                backend = cache.backend
                assert isinstance(backend, RedisBackend)
                backend.ensure_index()
                before = int(client.info("memory")["used_memory"])
                funcs = decorated(cache)
                entries = []
                for i, vec in enumerate(vectors):
                    memo = funcs[i % TENANTS]._memo()
                    call = memo.keys.bind((prompts[i],), {}, False)
                    key, check = memo.key_of(cache, call)
                    entries.append(memo.entry(cache, call, key, check, responses[i], vec))
                backend.set_many(entries, 3_600_000, bulk=True)
                assert backend.index is not None
                wait_indexed(client, backend.index.name, n)
                who = f"pmm_memo ({cache.config.vector_algorithm}, the default)"
                cache.close()
            else:
                rvl = _redisvl(url, "rvl", {})
                before = int(client.info("memory")["used_memory"])
                for i, vec in enumerate(vectors):
                    rvl.store(
                        prompts[i],
                        responses[i],
                        vector=vec.tolist(),
                        filters={"tenant": f"tenant{i % TENANTS}"},
                    )
                wait_indexed(client, "rvl", n)
            per[who] = (int(client.info("memory")["used_memory"]) - before) / n
            client.close()
    base = "RedisVL SemanticCache"
    for who, size in per.items():
        ratio = None if who == base else size / per[base]
        verdict = "" if ratio is None else ("met" if ratio <= 1.0 else "NOT met")
        table.add(
            Line(path, who, size, None, ratio, base, "≤ RedisVL" if ratio else "", verdict, "bytes")
        )
