"""Redis backend: `redis.Redis` for sync callers, `redis.asyncio.Redis` for async ones.

Entry layout (a hash at `cache:<tenant>:<qhash>`): the seed's `text`, `tenant`, `user`,
`created_at`, `embedding`, plus `fmt`/`codec`/`value`/`sig` (the envelope, see
`_codec`), `check` (collision digest), `fn`/`fn_name`, `scope`, `tenant_h`/`user_h`
(exact-match filter digests, see `_index`), `text_h` (digest of the whole normalised
text, see `_semantic`), `embedder`/`emb` (the vector's embedder label and its digest,
which the index FILTER of that embedder's index matches).

- A write is atomic UNLINK + HSET + PEXPIRE (one script call, see `_write`; bulk writes
  one MULTI/EXEC per batch), so no key ever exists without a TTL and no stale field (an
  old embedding) survives an overwrite.
- An exact read is one HMGET of the envelope fields: the embedding never crosses the wire
  (with a signing key it also fetches what the signature binds, see `_BOUND_FIELDS`).
- Retries: one, immediate, on ConnectionError only (a stale pooled socket after a
  restart); never on timeouts, which would multiply what a frozen server costs the
  caller. Otherwise `Cache`'s circuit breaker decides when to try again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT

from .._codec import FORMAT_VERSION, Codec, entry_binding
from .._digests import check_digest, short_digest
from .._embedder_id import embedder_tag
from .._errors import CodecError, IndexSchemaError, SearchUnavailableError
from .._loopbound import LoopBound
from ._base import Entry, Neighbour, Stored, VectorQuery
from ._connect import (
    LoadAwareAsyncRetry,
    abandon_client,
    aclose_client,
    async_client,
    close_client,
    sync_client,
)
from ._index import IndexSpec, adopt_algorithm, check_compatible
from ._write import EntryWriter

logger = logging.getLogger("pmm_memo")

_READ_FIELDS = ("fmt", "codec", "value", "sig", "sum", "check")  # envelope + check digest
_ENVELOPE = 5  # the first five are what Codec.decode takes
_FILTER_FIELDS = ("tenant", "user", "fn", "scope")  # re-checked on every hit
_MATCH_FIELDS = ("text_h", "embedder")  # read by the matcher (see _candidates)
_TEXT_FIELDS = ("text", "created_at")
_FEEDBACK_FIELDS = ("min_sim",)  # Entry.min_similarity
# Signed (with the value) when signing: every field that could turn a miss into a hit.
# `min_sim` is not: report_wrong_hit's script raises it server-side (no key there), it
# only ever makes hits rarer, and lowering it only restores the writer's own threshold
# for this (still fully verified) entry; it never makes an altered entry servable.
_SEMANTIC_BOUND = ("text_h", "embedder", "text", "embedding")
_BOUND_FIELDS = _FILTER_FIELDS + _SEMANTIC_BOUND
_HEX32 = re.compile(rb"[0-9a-f]{32}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
TENANT_DIGEST = b"pmm_memo/tenant/v1"
BULK_TIMEOUT = 120.0  # seconds a bulk-write batch may take
_UNLOCK_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)
USER_DIGEST = b"pmm_memo/user/v1"
# Feedback on a wrong semantic hit: raise the entry's `min_sim` (never lower it), only if
# the entry still exists (HSET on a missing key would create a stray hash without TTL).
_RAISE_MIN_SIM_SCRIPT = (
    "if redis.call('exists', KEYS[1]) == 0 then return 0 end "
    "local cur = tonumber(redis.call('hget', KEYS[1], 'min_sim') or '0') or 0 "
    "if tonumber(ARGV[1]) > cur then redis.call('hset', KEYS[1], 'min_sim', ARGV[1]) end "
    "return 1"
)


def glob_escape(text: str) -> str:
    """Escape SCAN MATCH specials so a tenant like `a*` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _b(text: str) -> bytes:
    # surrogatepass: any Python str a caller passes must be storable.
    return text.encode("utf-8", "surrogatepass")


def _u(raw: Any) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)


def tenant_tag(tenant: str) -> str:
    return short_digest(tenant, TENANT_DIGEST)


def user_tag(user: str) -> str:
    return short_digest(user, USER_DIGEST)


class RedisBackend:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        codec: Codec,
        key_prefix: str = "cache:",
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        max_connections: int = 50,
        pool_timeout: float = 10.0,
        failures: Callable[[], int] | None = None,
        replies: Callable[[], int] | None = None,
        batch_size: int = 100,
        index: IndexSpec | Callable[[], IndexSpec] | None = None,
        vector_type: str = "FLOAT32",
        require_search: bool = False,
    ) -> None:
        self.url = url
        self.codec = codec
        self.key_prefix = key_prefix
        self.batch_size = batch_size
        # The index dimension comes from the embedder, which is built only when a semantic
        # feature is first used: exact caching never constructs an embedder.
        self._index_source = index
        self._index: IndexSpec | None = None
        self.require_search = require_search
        self._opts: dict[str, Any] = {
            # RESP2: its flat replies parse measurably faster in redis-py than RESP3 maps
            # (~25us on a 1-neighbour FT.SEARCH); every reply shape here handles both.
            "protocol": 2,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "health_check_interval": 0,
            "max_connections": max_connections,  # pool sizing, see _connect
            "pool_timeout": pool_timeout,
            "failures": failures,  # the breaker's failure count, see _connect.BlockingPool
            "replies": replies,  # replies received, see _connect.LocalSlowness
        }
        self._reply_count = replies  # see _connect.LocalSlowness
        self.client: redis.Redis = self._connect(self._opts)
        self._aclients: LoopBound[redis.asyncio.Redis] = LoopBound(
            self._aconnect, self._aclose, abandon_client
        )
        self._bulk_client: redis.Redis | None = None
        self._writer = EntryWriter()
        self._search: bool | None = None  # None: not probed yet
        self._index_ready = False
        self._index_error: IndexSchemaError | SearchUnavailableError | None = None
        self._warned_no_search = False
        self._warned_schema = False
        # numpy dtype names: numpy itself is imported only once a vector is met.
        self._vector_dtype = "float16" if vector_type == "FLOAT16" else "float32"
        # With a signing key a read also fetches what the signature binds the entry to.
        self._read_fields = _READ_FIELDS + (_BOUND_FIELDS if codec.signs else ())

    @property
    def index(self) -> IndexSpec | None:
        if self._index is None and self._index_source is not None:
            src = self._index_source
            self._index = src if isinstance(src, IndexSpec) else src()
        return self._index

    # -- clients -------------------------------------------------------------------------

    def _connect(self, options: dict[str, Any]) -> redis.Redis:
        """A sync client (the cluster backend overrides the three client hooks)."""
        return sync_client(self.url, options, _sync_retry())

    def _aconnect(self) -> redis.asyncio.Redis:
        return async_client(self.url, self._opts, LoadAwareAsyncRetry(self._reply_count))

    async def _aclose(self, client: redis.asyncio.Redis) -> None:
        await aclose_client(client)

    def stats_client(self) -> redis.Redis:
        """The client the cross-process statistics are sent with (see _shared_stats)."""
        return self.client

    def memory_used(self) -> int:
        return int(self.client.info("memory").get("used_memory", 0))

    async def aclient(self) -> redis.asyncio.Redis:
        """The asyncio client of the running loop (connections are bound to one loop)."""
        return await self._aclients.get()

    @property
    def supports_vectors(self) -> bool:
        return bool(self._search) and self._index_ready

    # -- entries ---------------------------------------------------------------------------

    @staticmethod
    def check_of(material: bytes) -> str:
        return check_digest(material)

    def _mapping(self, entry: Entry, vectors: bool) -> dict[EncodableT, EncodableT]:
        check = entry.check if isinstance(entry.check, str) else entry.check.decode()
        m: dict[EncodableT, EncodableT] = {
            "check": check,
            "tenant": _b(entry.tenant),
            "tenant_h": tenant_tag(entry.tenant),
            "user": _b(entry.user),
            "user_h": user_tag(entry.user),
            "fn": entry.fn,
            "fn_name": _b(entry.fn_name),
            "created_at": int(entry.created_at),
        }
        if entry.text is not None:
            m["text"] = _b(entry.text)
        if entry.scope is not None:
            m["scope"] = entry.scope
        if entry.min_similarity > 0:
            m["min_sim"] = repr(float(entry.min_similarity))
        if entry.text_h is not None:
            m["text_h"] = entry.text_h
        if entry.embedding is not None and vectors and entry.embedder is not None:
            # A vector is stored only with its embedder: without the label no index
            # would hold it, and it could never be told apart from another space's.
            m["embedding"] = entry.embedding.astype(self._vector_dtype).tobytes()
            m["embedder"] = _b(entry.embedder)
            m["emb"] = embedder_tag(entry.embedder)
        binding = b""
        if self.codec.signs:  # bound to exactly what is stored (see _SEMANTIC_BOUND)
            text_h, embedder, text, embedding = (_raw(m.get(f)) for f in _SEMANTIC_BOUND)
            binding = entry_binding(
                entry.key,
                check,
                entry.tenant,
                entry.user,
                entry.fn,
                entry.scope,
                text_h=text_h,
                embedder=embedder,
                text=text,
                embedding=embedding,
            )
        enc = self.codec.encode(entry.value, binding)  # CodecError: returned unstored
        m.update({"fmt": FORMAT_VERSION, "codec": enc.codec, "value": enc.payload})
        m["sum"] = enc.checksum
        if enc.sig is not None:
            m["sig"] = enc.sig
        return m

    def _binding(self, key: Any, check: Any, fields: list[Any]) -> bytes:
        """entry_binding() of an entry as read back (empty when not signing); `fields`:
        the raw values of _BOUND_FIELDS, in that order (None: absent)."""
        if not self.codec.signs:
            return b""
        tenant, user, fn, scope = (_u(x) for x in fields[: len(_FILTER_FIELDS)])
        text_h, embedder, text, embedding = (_raw(x) for x in fields[len(_FILTER_FIELDS) :])
        return entry_binding(
            _u(key),
            _u(check),
            tenant,
            user,
            fn,
            scope,
            text_h=text_h,
            embedder=embedder,
            text=text,
            embedding=embedding,
        )

    def _decode(self, fields: Callable[[str], Any], binding: bytes) -> Any:
        fmt, codec, value, sig, check_sum = (fields(f) for f in _READ_FIELDS[:_ENVELOPE])
        return self.codec.decode(fmt, codec, value, sig, check_sum, binding)

    def _stored(self, key: str, raw: list[Any]) -> Stored | None:
        if raw.count(None) == len(raw):  # a miss (C-speed: this runs on every read)
            return None
        check = raw[_ENVELOPE]
        binding = self._binding(key, check, raw[_ENVELOPE + 1 :])
        fmt, codec, payload, sig, check_sum = raw[:_ENVELOPE]
        value = self.codec.decode(fmt, codec, payload, sig, check_sum, binding)
        return Stored(value, _u(check) if check is not None else None)

    def fetch(self, key: str) -> Entry | None:
        reply: dict[Any, Any] = self.client.hgetall(key)
        raw: dict[str, bytes] = {_u(k): v for k, v in reply.items()}
        if not raw:
            return None
        binding = self._binding(key, raw.get("check"), [raw.get(f) for f in _BOUND_FIELDS])
        value = self._decode(raw.get, binding)
        emb = raw.get("embedding")
        vector = None
        if emb:
            import numpy as np

            vector = np.frombuffer(emb, dtype=self._vector_dtype).astype(np.float32)
        return Entry(
            key=key,
            value=value,
            check=_u(raw.get("check")),
            tenant=_u(raw.get("tenant")),
            user=_u(raw.get("user")),
            fn=_u(raw.get("fn")),
            fn_name=_u(raw.get("fn_name")),
            created_at=float(_u(raw.get("created_at")) or 0),
            text=_u(raw["text"]) if "text" in raw else None,
            scope=_u(raw.get("scope")) or None,
            embedding=vector,
            min_similarity=_float_or_zero(raw.get("min_sim")),
            text_h=_u(raw.get("text_h")) or None,
            embedder=_u(raw.get("embedder")) or None,
        )

    def ttl_ms(self, key: str) -> int | None:
        ttl = int(self.client.pttl(key))
        return None if ttl < 0 else ttl

    def get(self, key: str) -> Stored | None:
        return self._stored(key, self.client.hmget(key, self._read_fields))

    def _many(self, keys: list[str], replies: list[Any]) -> list[Stored | CodecError | None]:
        # One bad entry must not hide the others: its CodecError takes its place.
        out: list[Stored | CodecError | None] = []
        for key, raw in zip(keys, replies, strict=True):
            try:
                out.append(self._stored(key, raw))
            except CodecError as exc:
                out.append(exc)
        return out

    def get_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        """Several exact reads in one round trip (a pipeline of HMGETs)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, self._read_fields)
        return self._many(keys, pipe.execute())

    async def aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        client = await self.aclient()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, self._read_fields)
        return self._many(keys, await pipe.execute())

    async def aget(self, key: str) -> Stored | None:
        client = await self.aclient()
        return self._stored(key, await client.hmget(key, self._read_fields))

    def set(self, entry: Entry, ttl_ms: int) -> None:
        mapping = self._mapping(entry, entry.embedding is not None and self._vectors_writable())
        self._writer.write(self.client, entry.key, mapping, ttl_ms)

    def _queue_writes(self, pipe: Any, entries: list[Entry], ttl_ms: int, vectors: bool) -> int:
        """Queue UNLINK + HSET + PEXPIRE per storable entry; returns how many."""
        count = 0
        for entry in entries:
            try:
                mapping = self._mapping(entry, vectors)
            except CodecError:
                continue  # the codec cannot store it: skipped, like a single write
            pipe.unlink(entry.key)
            pipe.hset(entry.key, mapping=mapping)
            pipe.pexpire(entry.key, ttl_ms)
            count += 1
        return count

    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        """Several writes, one MULTI/EXEC per CACHE_BATCH_SIZE entries (each key with its
        TTL). `bulk=True` (explicit bulk loads) uses a client with a long timeout:
        RediSearch indexes inside HSET, and a batch of HNSW inserts can take seconds, far
        beyond the hot path's socket timeout. Returns how many entries were written."""
        vectors = any(e.embedding is not None for e in entries) and self._vectors_writable()
        client = self.client
        if bulk:
            if self._bulk_client is None:
                self._bulk_client = self._connect({**self._opts, "socket_timeout": BULK_TIMEOUT})
            client = self._bulk_client
        written = 0
        for start in range(0, len(entries), self.batch_size):
            pipe = client.pipeline(transaction=True)
            count = self._queue_writes(
                pipe, entries[start : start + self.batch_size], ttl_ms, vectors
            )
            if count:
                pipe.execute()
                written += count
        return written

    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int:
        """`set_many` for asyncio callers, in one MULTI/EXEC (small batches)."""
        vectors = any(e.embedding is not None for e in entries) and (
            self._index_ready or await asyncio.to_thread(self._vectors_writable)
        )
        client = await self.aclient()
        pipe = client.pipeline(transaction=True)
        written = self._queue_writes(pipe, entries, ttl_ms, vectors)
        if written:
            await pipe.execute()
        return written

    async def aset(self, entry: Entry, ttl_ms: int) -> None:
        vectors = entry.embedding is not None and (
            self._index_ready or await asyncio.to_thread(self._vectors_writable)
        )
        mapping = self._mapping(entry, vectors)
        await self._writer.awrite(await self.aclient(), entry.key, mapping, ttl_ms)

    def delete(self, key: str) -> bool:
        return bool(self.client.unlink(key))

    async def adelete(self, key: str) -> bool:
        client = await self.aclient()
        return bool(await client.unlink(key))

    # -- feedback (wrong semantic hits) ---------------------------------------------------

    def raise_min_similarity(self, key: str, similarity: float) -> bool:
        args = ("EVAL", _RAISE_MIN_SIM_SCRIPT, 1, key, repr(float(similarity)))
        return bool(_command(self.client, *args))

    async def araise_min_similarity(self, key: str, similarity: float) -> bool:
        client = await self.aclient()
        args = ("EVAL", _RAISE_MIN_SIM_SCRIPT, 1, key, repr(float(similarity)))
        return bool(await _acommand(client, *args))

    # -- locks (see _distributed) -----------------------------------------------------------

    def try_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        # SET NX GET: the reply is the holder's token (None if the key was free), so a
        # retried SET whose first attempt did land still knows the lock is its own.
        held = self.client.set(name, token, nx=True, px=ttl_ms, get=True)
        return held is None or _u(held) == token

    def unlock(self, name: str, token: str) -> None:
        # Compare-and-delete in one step: never delete a lock another owner now holds.
        _command(self.client, "EVAL", _UNLOCK_SCRIPT, 1, name, token)

    def lock_held(self, name: str) -> bool:
        return bool(self.client.exists(name))

    async def atry_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        client = await self.aclient()
        held = await client.set(name, token, nx=True, px=ttl_ms, get=True)
        return held is None or _u(held) == token

    async def aunlock(self, name: str, token: str) -> None:
        client = await self.aclient()
        await _acommand(client, "EVAL", _UNLOCK_SCRIPT, 1, name, token)

    async def alock_held(self, name: str) -> bool:
        client = await self.aclient()
        return bool(await client.exists(name))

    # -- scanning a tenant -----------------------------------------------------------------

    def _tenant_pattern(self, tenant: str) -> str:
        return glob_escape(self.key_prefix + tenant + ":") + "*"

    def _own(self, keys: Iterable[bytes], tenant: str) -> list[bytes]:
        # `cache:a:*` also matches tenant `a:b`'s `cache:a:b:<hash>`; only keys whose rest
        # is exactly one 32-hex hash belong to tenant `a`.
        head = len(_b(self.key_prefix + tenant + ":"))
        return [k for k in keys if len(k) == head + 32 and _HEX32.fullmatch(k, head)]

    def _batches(self, tenant: str) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self._tenant_pattern(tenant), count=self.batch_size):
            batch.append(key)
            if len(batch) >= self.batch_size:
                yield self._own(batch, tenant)
                batch = []
        if batch:
            yield self._own(batch, tenant)

    def _of_function(self, keys: list[bytes], fn: str | None) -> list[bytes]:
        if fn is None or not keys:
            return keys
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hget(k, "fn")
        return [k for k, f in zip(keys, pipe.execute(), strict=True) if _u(f) == fn]

    def clear(
        self, tenant: str, fn: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """UNLINK the tenant's entries (of one function, if given) in SCAN batches of
        CACHE_BATCH_SIZE; `progress` receives the running count after each batch."""
        removed = 0
        for batch in self._batches(tenant):
            keys = self._of_function(batch, fn)
            if keys:
                removed += int(self.client.unlink(*keys))
                if progress is not None:
                    progress(removed)
        return removed

    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None:
        if tenant is None:
            return None
        return sum(len(self._of_function(b, fn)) for b in self._batches(tenant))

    def tenants(self) -> dict[str, int]:
        """Entries per tenant, by scanning the key prefix (for stats and the CLI)."""
        counts: dict[str, int] = {}
        head = len(_b(self.key_prefix))
        for key in self.client.scan_iter(
            match=glob_escape(self.key_prefix) + "*", count=max(self.batch_size, 1000)
        ):
            rest = key[head:]
            if len(rest) > 33 and rest[-33:-32] == b":" and _HEX32.fullmatch(rest, len(rest) - 32):
                tenant = _u(rest[:-33])
                counts[tenant] = counts.get(tenant, 0) + 1
        return counts

    # -- search ----------------------------------------------------------------------------

    def search_available(self) -> bool:
        if self._search is None:
            try:
                _command(self.client, "FT._LIST")
                self._search = True
            except redis.ResponseError:
                self._search = False
        return self._search

    def ensure_index(self) -> bool:
        """Create or verify the index. False (exact-only) when the server cannot search.

        Raises IndexSchemaError when an index of that name has another schema, and
        SearchUnavailableError without a search module if CACHE_REQUIRE_SEARCH is true.
        The outcome is remembered: this costs round trips once, not per call.
        """
        if self._index_ready:
            return True
        if self._index_error is not None:
            raise self._index_error
        if self.index is None:
            return False
        if not self.search_available():
            if self.require_search:
                self._index_error = SearchUnavailableError(
                    f"{self.url_masked()} has no search module (FT.* commands) and "
                    f"CACHE_REQUIRE_SEARCH=true; use Redis 8 or Redis Stack"
                )
                raise self._index_error
            if not self._warned_no_search:
                self._warned_no_search = True
                logger.warning(
                    "%s has no search module (FT.* commands): exact caching works, "
                    "semantic lookups are exact-only (use Redis 8 or Redis Stack; "
                    "CACHE_REQUIRE_SEARCH=true makes this an error)",
                    self.url_masked(),
                )
            return False
        self._verify_index(self.index)
        self._index_ready = True
        return True

    def _verify_index(self, spec: IndexSpec) -> None:
        """Create the index if it is missing; IndexSchemaError if it differs."""
        try:
            info = _command(self.client, "FT.INFO", spec.name)
        except redis.ResponseError as exc:
            if "unknown index" not in str(exc).lower() and "no such index" not in str(exc).lower():
                raise
            try:
                _command(self.client, *spec.create_args())
            except redis.ResponseError as create_exc:
                if "already exists" not in str(create_exc).lower():
                    raise
            info = _command(self.client, "FT.INFO", spec.name)
        adopted = adopt_algorithm(spec, info)
        if adopted is not spec:
            logger.info(
                "index %s uses %s (CACHE_VECTOR_ALGORITHM=%s applies to new indexes)",
                adopted.name,
                adopted.algorithm,
                spec.algorithm,
            )
            if self._index is not None:  # a cluster's per-primary names share one spec
                self._index = dataclasses.replace(adopted, name=self._index.name)
        try:
            check_compatible(adopted, info)
        except IndexSchemaError as exc:
            self._index_error = exc
            raise

    @property
    def index_error(self) -> IndexSchemaError | SearchUnavailableError | None:
        """The index problem found, if any (for health checks)."""
        return self._index_error

    def _vectors_writable(self) -> bool:
        """May embeddings be written? Not into an index that would ignore them."""
        if self._index_ready:
            return True
        try:
            self.ensure_index()
        except IndexSchemaError as exc:
            if not self._warned_schema:
                self._warned_schema = True
                logger.error("%s; entries are stored without embeddings until fixed", exc)
            return False
        except SearchUnavailableError:
            return True  # stored for later; exact caching is unaffected
        return True

    def index_info(self) -> dict[str, Any] | None:
        from ._index import describe_existing

        if self.index is None or not self.search_available():
            return None
        try:
            return describe_existing(_command(self.client, "FT.INFO", self.index.name))
        except redis.ResponseError:
            return None

    def _knn_args(self, q: VectorQuery) -> list[Any]:
        assert self.index is not None
        filters = [f"@tenant_h:{{{tenant_tag(q.tenant)}}}"]
        if q.fn is not None:
            filters.append(f"@fn:{{{q.fn}}}")
        if q.scope is not None:
            filters.append(f"@scope:{{{q.scope}}}")
        if q.user is not None:
            filters.append(f"@user_h:{{{user_tag(q.user)}}}")
        if q.text_h is not None:
            filters.append(f"@text_h:{{{q.text_h}}}")
        ef = " EF_RUNTIME $ef" if self.index.algorithm == "HNSW" else ""
        query = f"({' '.join(filters)})=>[KNN $k @embedding $vec{ef} AS __score]"
        params: list[Any] = ["k", q.k, "vec", q.vector.astype(self._vector_dtype).tobytes()]
        if ef:
            params += ["ef", max(self.index.ef_runtime, q.k)]
        fields = [
            "__score",
            *_FILTER_FIELDS,
            *_FEEDBACK_FIELDS,
            *_MATCH_FIELDS,
            *(_TEXT_FIELDS if q.with_text else ()),
            *(_READ_FIELDS if q.with_values else ()),
        ]
        if q.with_values and self.codec.signs:  # what the signature check needs
            fields += [f for f in _SEMANTIC_BOUND if f not in fields]
        return [
            "FT.SEARCH",
            self.index.name,
            query,
            "PARAMS",
            len(params),
            *params,
            "SORTBY",
            "__score",
            "RETURN",
            len(fields),
            *fields,
            "LIMIT",
            0,
            q.k,
            "DIALECT",
            2,
        ]

    def _neighbours(self, reply: Any, q: VectorQuery) -> list[Neighbour]:
        out = []
        for key, fields in _iter_docs(reply):
            f = {(_u(k)): v for k, v in fields.items()}
            n = Neighbour(
                key=_u(key),
                similarity=1.0 - float(_u(f.get("__score")) or "1"),
                tenant=_u(f.get("tenant")),
                user=_u(f.get("user")),
                fn=_u(f.get("fn")) or None,
                scope=_u(f.get("scope")) or None,
                text=_u(f.get("text")) if f.get("text") is not None else None,
                created_at=float(_u(f["created_at"])) if f.get("created_at") else None,
                min_similarity=_float_or_zero(f.get("min_sim")),
                text_h=_u(f.get("text_h")) or None,
                embedder=_u(f.get("embedder")) or None,
            )
            if q.with_values:
                binding = self._binding(key, f.get("check"), [f.get(x) for x in _BOUND_FIELDS])
                try:
                    n.value = self._decode(f.get, binding)
                except CodecError:
                    n.corrupt = True
                n.check = _u(f.get("check")) or None
            out.append(n)
        return out

    def knn(self, query: VectorQuery) -> list[Neighbour]:
        if not self.ensure_index():
            return []
        try:
            reply = _command(self.client, *self._knn_args(query))
        except redis.ResponseError as exc:
            self._forget_index_if_gone(exc)
            raise
        return self._neighbours(reply, query)

    def _forget_index_if_gone(self, exc: redis.ResponseError) -> None:
        # A restarted server without persistence (or an FT.DROPINDEX) loses the index:
        # forget it, so the next lookup re-creates it instead of failing forever.
        text = str(exc).lower()
        if "no such index" in text or "unknown index" in text:
            self._index_ready = False

    async def aknn(self, query: VectorQuery) -> list[Neighbour]:
        if not self._index_ready:
            # Index creation is a one-time, start-up cost: do it with the sync client.
            ready = await asyncio.to_thread(self.ensure_index)
            if not ready:
                return []
        client = await self.aclient()
        try:
            reply = await _acommand(client, *self._knn_args(query))
        except redis.ResponseError as exc:
            self._forget_index_if_gone(exc)
            raise
        return self._neighbours(reply, query)

    # -- housekeeping ----------------------------------------------------------------------

    def ping(self) -> float:
        start = time.perf_counter()
        self.client.ping()
        return (time.perf_counter() - start) * 1000.0

    def url_masked(self) -> str:
        from .._config import mask_url

        return mask_url(self.url)

    def close(self) -> None:
        close_client(self.client)
        if self._bulk_client is not None:
            close_client(self._bulk_client)
        self._aclients.release_closed()

    async def aclose(self) -> None:
        await self._aclients.close()


def _sync_retry() -> Retry:
    """One immediate retry on ConnectionError only: it re-dials a pooled socket that went
    stale (a restarted server closed it) instead of opening the breaker for an interval;
    a refused connection fails again at once. Never on TimeoutError: a frozen server must
    cost one timeout, not two."""
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


def _command(client: redis.Redis, *args: Any) -> Any:
    """A raw command (redis-py leaves execute_command untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


async def _acommand(client: redis.asyncio.Redis, *args: Any) -> Any:
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def _raw(value: Any) -> bytes | None:
    """A field's bytes as stored (the server returns what HSET was given, as bytes)."""
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _float_or_zero(raw: Any) -> float:
    """A stored `min_sim`; anything unreadable counts as none (0.0), never a crash."""
    if raw is None:
        return 0.0
    try:
        value = float(_u(raw))
    except ValueError:
        return 0.0
    return value if 0.0 <= value <= 2.0 else 0.0


def _iter_docs(reply: Any) -> Iterator[tuple[Any, dict[Any, Any]]]:
    """(key, fields) of an FT.SEARCH reply, RESP2 list or redis-py >= 8 dict form."""
    if isinstance(reply, dict):
        docs: list[dict[Any, Any]] = reply.get(b"results") or reply.get("results") or []
        for doc in docs:
            key = doc.get(b"id") or doc.get("id")
            fields = doc.get(b"extra_attributes") or doc.get("extra_attributes") or {}
            yield key, fields
        return
    if not isinstance(reply, list | tuple):
        return
    items = reply[1:]
    for i in range(0, len(items) - 1, 2):
        flat = items[i + 1]
        yield items[i], {flat[j]: flat[j + 1] for j in range(0, len(flat) - 1, 2)}
