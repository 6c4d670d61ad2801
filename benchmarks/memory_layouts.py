"""Server memory per semantic entry by hash layout: where the floor under RedisVL is.

    python3 benchmarks/memory_layouts.py [--entries 3000]

pmm_memo writes `--entries` real entries (1536-d vectors, the peers.py prompts and
responses); their hashes are then loaded, re-laid-out, into fresh servers with the
index each layout needs, beside RedisVL SemanticCache's own layout and schema:

- `pmm_memo format 2`: as written (the seed's fields, `value`, `meta`, `text_h`, `emb`,
  `part`);
- `pmm_memo format 1`: the same entries with `meta` split into its nine fields (the
  previous format);
- `no text_h TAG`: format 2 with the whole-text digest moved into `meta` and its TAG
  dropped from the index (a tag unique to every entry, the costliest index entry; a
  threshold-1.0 lookup would then compare the digests of its KNN neighbours) — a new
  index schema, measured as the next lever;
- `floor`: that, also without the two labels kept for people (embedder label,
  function name): only the seed's five fields, `value`, the digests and envelope in
  `meta`, the `emb` field the per-embedder index FILTER needs and the `part` tags;
- `smallest`: that, with every digest in `meta` as base64url rather than hex, the
  `part` tags cut to 64 bits and `emb` folded into `part` (the FILTER reads `part`):
  the least this design's checks can be stored in;
- `RedisVL`: its seven fields (prompt, response, vector, entry_id, two timestamps,
  the tenant filter) under its own schema (prompt and response TEXT).

used_memory growth per entry on a fresh server each (freed memory returns to the
allocator lazily), split into the hashes alone (the same rows written to a server with
no index) and the index's share (the difference). Only memory is compared: no timing,
so a loaded machine is fine; the index's share moves by ~±80 B between runs.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import redis

from benchmarks._peers_semantic import PROMPT, RESPONSE
from benchmarks._util import redis_server
from benchmarks.bench_semantic import DIM, TENANTS, Precomputed, decorated, unit
from pmm_memo import Cache, CacheConfig
from pmm_memo.backends._entry_meta import SEP, unpack_meta
from pmm_memo.backends.redis import RedisBackend

Hash = dict[bytes, bytes]
SEED = ["text", "TEXT", "tenant", "TAG", "user", "TAG", "created_at", "NUMERIC", "SORTABLE"]
VECTOR = ["VECTOR", "FLAT", 6, "TYPE", "FLOAT32", "DIM", DIM, "DISTANCE_METRIC", "COSINE"]


def pmm_entries(n: int) -> tuple[list[tuple[bytes, Hash]], list[Any], float, str]:
    """n entries written by pmm_memo: (key, fields) each, the index's FT.CREATE
    arguments, the measured bytes per entry, and the index's FILTER tag."""
    vectors = unit(np.random.default_rng(5), n)
    prompts = [PROMPT.format(i=i, t=i % TENANTS) for i in range(n)]
    with redis_server(None) as url:
        client = redis.Redis.from_url(url, protocol=2)
        cache = Cache(
            CacheConfig(redis_url=url, batch_size=500, socket_timeout=60.0),
            embedder=Precomputed(dict(zip(prompts, vectors, strict=True))),
        )
        backend = cache.backend
        assert isinstance(backend, RedisBackend)
        backend.ensure_index()
        spec = backend.index
        assert spec is not None and spec.embedder_tag is not None
        before = int(client.info("memory")["used_memory"])
        funcs, entries = decorated(cache), []
        for i, vec in enumerate(vectors):
            memo = funcs[i % TENANTS]._memo()
            call = memo.keys.bind((prompts[i],), {}, False)
            key, check = memo.key_of(cache, call)
            entries.append(memo.entry(cache, call, key, check, RESPONSE.format(i=i), vec))
        backend.set_many(entries, 3_600_000, bulk=True)
        _wait(client, spec.name, n)
        per = (int(client.info("memory")["used_memory"]) - before) / n
        rows = [(k, client.hgetall(k)) for k in client.scan_iter(match="cache:*", count=1000)]
        create = spec.create_args()
        cache.close()
        client.close()
    return rows, create, per, spec.embedder_tag


def _wait(client: redis.Redis, index: str, n: int) -> None:
    for _ in range(600):
        info = client.execute_command("FT.INFO", index)
        fields = dict(zip(info[::2], info[1::2], strict=False))
        if int(fields[b"num_docs"]) >= n and int(fields.get(b"indexing", 0)) == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{index} did not index {n} entries")


def format_1(fields: Hash) -> Hash:
    meta = unpack_meta(fields[b"meta"])
    assert meta is not None
    out = {k: v for k, v in fields.items() if k != b"meta"}
    for name, value in zip(
        (b"fmt", b"codec", b"sum", b"sig", b"check", b"fn", b"scope", b"embedder", b"fn_name"),
        meta,
        strict=True,
    ):
        if value:
            out[name] = value
    return out


def without_text_tag(fields: Hash) -> Hash:
    out = {k: v for k, v in fields.items() if k != b"text_h"}
    out[b"meta"] = fields[b"meta"] + SEP + fields[b"text_h"]
    return out


def floor(fields: Hash) -> Hash:
    meta = unpack_meta(fields[b"meta"])
    assert meta is not None
    out = without_text_tag(fields)
    unlabelled = meta._replace(embedder=b"", fn_name=b"")
    out[b"meta"] = SEP.join([*unlabelled, fields[b"text_h"]])
    return out


def _b64(hex_digest: bytes) -> bytes:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest.decode())).rstrip(b"=")


def smallest(fields: Hash, tag: str) -> Hash:
    """`floor` with every digest in `meta` as base64url (16 hex -> 11 characters), the
    `part` tags cut to 64 bits and `emb` folded into `part` as a fourth tag (the index
    FILTER then reads `part`)."""
    meta = unpack_meta(fields[b"meta"])
    assert meta is not None
    out = {k: v for k, v in fields.items() if k not in (b"text_h", b"emb", b"meta")}
    tags = [t[:16] for t in fields[b"part"].split(b",")]
    out[b"part"] = b",".join([*tags, tag[:16].encode()])
    digests = [_b64(d) for d in (meta.checksum, meta.check, meta.fn, meta.scope)]
    checksum, check, fn, scope = digests
    packed = [meta.fmt, meta.codec, checksum, meta.sig, check, fn, scope, b"", b""]
    out[b"meta"] = SEP.join([*packed, _b64(fields[b"text_h"])])
    return out


def redisvl(i: int, fields: Hash) -> Hash:
    entry_id = b"%064x" % (i * 2654435761)
    return {
        b"prompt": fields[b"text"],
        b"response": fields[b"value"],
        b"prompt_vector": fields[b"embedding"],
        b"entry_id": entry_id,
        b"inserted_at": b"1796129670.2374656",
        b"updated_at": b"1796129670.2374666",
        b"tenant": fields[b"tenant"],
    }


def measure(
    create: list[Any] | None, index: str, rows: Iterator[tuple[bytes, Hash]], n: int
) -> float:
    """used_memory growth per entry on a fresh server: with the index `create` makes,
    or, with `create` None, the hashes alone (the index's share is the difference)."""
    with redis_server(None) as url:
        client = redis.Redis.from_url(url, protocol=2)
        if create is not None:
            client.execute_command(*create)
        before = int(client.info("memory")["used_memory"])
        pipe = client.pipeline(transaction=False)
        for i, (key, fields) in enumerate(rows):
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, 3_600_000)
            if i % 500 == 499:
                pipe.execute()
        pipe.execute()
        if create is not None:
            _wait(client, index, n)
        per = (int(client.info("memory")["used_memory"]) - before) / n
        client.close()
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=3000)
    args = parser.parse_args()
    n = args.entries
    rows, create, written, tag = pmm_entries(n)
    name = create[1]
    head = ["FT.CREATE", name, "ON", "HASH", "PREFIX", 1, "cache:", "FILTER"]
    body = ["SCHEMA", *SEED, "embedding", *VECTOR, "part", "TAG", "CASESENSITIVE"]
    floor_schema = [*head, f'@emb=="{tag}"', *body]
    smallest_schema = [*head, f'contains(@part, "{tag[:16]}")', *body]
    rvl_schema = ["FT.CREATE", "rvl", "ON", "HASH", "PREFIX", 1, "rvl:", "SCHEMA"]
    rvl_schema += ["prompt", "TEXT", "response", "TEXT", "inserted_at", "NUMERIC"]
    rvl_schema += ["updated_at", "NUMERIC", "prompt_vector", *VECTOR, "tenant", "TAG"]
    Rows = Callable[[], Iterator[tuple[bytes, Hash]]]
    layouts: list[tuple[str, list[Any], str, Rows]] = [
        ("pmm_memo format 2 (as written)", create, name, lambda: iter(rows)),
        (
            "pmm_memo format 1 (meta split)",
            create,
            name,
            lambda: ((k, format_1(f)) for k, f in rows),
        ),
        (
            "format 2, no text_h TAG (see docstring)",
            floor_schema,
            name,
            lambda: ((k, without_text_tag(f)) for k, f in rows),
        ),
        (
            "floor: that, no labels for people",
            floor_schema,
            name,
            lambda: ((k, floor(f)) for k, f in rows),
        ),
        (
            "smallest: that, digests in base64, `emb` in `part`",
            smallest_schema,
            name,
            lambda: ((k, smallest(f, tag)) for k, f in rows),
        ),
        (
            "RedisVL SemanticCache layout",
            rvl_schema,
            "rvl",
            lambda: ((b"rvl:%064x" % i, redisvl(i, f)) for i, (_, f) in enumerate(rows)),
        ),
    ]
    sizes = {
        label: (measure(schema, index, entries(), n), measure(None, index, entries(), n))
        for label, schema, index, entries in layouts
    }
    base = sizes["RedisVL SemanticCache layout"][0]
    print(f"\nserver memory per {DIM}-d entry, {n:,} entries, one fresh server each")
    print(f"(pmm_memo's own writes of format 2 measured {written:,.0f} B per entry)\n")
    print("| layout | bytes per entry | hash | index | vs RedisVL |\n|---|---|---|---|---|")
    for label, (size, hashes) in sizes.items():
        index_share = size - hashes
        print(
            f"| {label} | {size:,.0f} | {hashes:,.0f} | {index_share:,.0f} | {size / base:.3f}x |"
        )
    print(f"\npython3 benchmarks/memory_layouts.py --entries {n}")


if __name__ == "__main__":
    main()
