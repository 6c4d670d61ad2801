"""Redis backend: `redis.Redis` for sync callers, `redis.asyncio.Redis` for async ones.

Entry layout: see `_redis_layout`; the index and KNN lookups: `_redis_search`; SCAN of a
tenant's keys: `_redis_scan`; locks: `_redis_locks` (mixins of `RedisBackend`).

- A write is atomic UNLINK + HSET + PEXPIRE (one script call, see `_write`; bulk writes
  one MULTI/EXEC per batch), so no key ever exists without a TTL and no stale field (an
  old embedding) survives an overwrite.
- An exact read is one HMGET of `meta` and `value`: the embedding never crosses the wire
  (with a signing key it also fetches what the signature binds, see `_BOUND_FIELDS`).
- Retries: one, immediate, on ConnectionError only (a stale pooled socket after a
  restart); never on timeouts, which would multiply what a frozen server costs the
  caller. Otherwise `Cache`'s circuit breaker decides when to try again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._codec import Codec
from .._errors import CodecError, IndexSchemaError, SearchUnavailableError
from .._loopbound import LoopBound
from ._base import Entry, Stored
from ._connect import (
    LoadAwareAsyncRetry,
    abandon_client,
    aclose_client,
    async_client,
    close_client,
    sync_client,
)
from ._index import IndexSpec
from ._limits import RedisRefusals, ServerLimits, entry_size, foreign_key, wrong_type
from ._read_ahead import ReadAhead
from ._redis_layout import (  # re-exported: the cluster backend, CLI and tests use them
    _BOUND_FIELDS,
    _READ_FIELDS,
    _acommand,
    _b,
    _command,
    _float_or_zero,
    _raw,
    glob_escape,
)
from ._redis_locks import RedisLocks
from ._redis_scan import RedisScan
from ._redis_search import RedisSearch
from ._write import EntryWriter

__all__ = [
    "BULK_TIMEOUT",
    "RedisBackend",
    "_BOUND_FIELDS",
    "_READ_FIELDS",
    "_b",
    "_command",
    "_float_or_zero",
    "_raw",
    "glob_escape",
]

logger = logging.getLogger("pmm_memo")

BULK_TIMEOUT = 120.0  # seconds a bulk-write batch may take
# Feedback on a wrong semantic hit: raise the entry's `min_sim` (never lower it), only if
# the entry still exists (HSET on a missing key would create a stray hash without TTL).
_RAISE_MIN_SIM_SCRIPT = (
    "if redis.call('exists', KEYS[1]) == 0 then return 0 end "
    "local cur = tonumber(redis.call('hget', KEYS[1], 'min_sim') or '0') or 0 "
    "if tonumber(ARGV[1]) > cur then redis.call('hset', KEYS[1], 'min_sim', ARGV[1]) end "
    "return 1"
)


class RedisBackend(RedisSearch, ReadAhead, RedisScan, RedisLocks, RedisRefusals):
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
            "replies": replies,  # replies received, see _evidence.LocalSlowness
        }
        self._reply_count = replies  # see _evidence.LocalSlowness
        self.client: redis.Redis = self._connect(self._opts)
        self._aclients: LoopBound[redis.asyncio.Redis] = LoopBound(
            self._aconnect, self._aclose, abandon_client
        )
        self._bulk_client: redis.Redis | None = None
        self._writer = EntryWriter()
        self._limits = ServerLimits()  # asked once, before the first write (see _limits)
        self._search: bool | None = None  # None: not probed yet
        self._index_ready = False
        self._index_error: IndexSchemaError | SearchUnavailableError | None = None
        self._warned_no_search = False
        self._warned_schema = False
        # numpy dtype names: numpy itself is imported only once a vector is met.
        self._vector_dtype = "float16" if vector_type == "FLOAT16" else "float32"
        # With a signing key a read also fetches what the signature binds the entry to.
        self._read_fields = _READ_FIELDS + (_BOUND_FIELDS if codec.signs else ())

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

    def fetch(self, key: str) -> Entry | None:
        return self._entry(key, self.client.hgetall(key))

    def ttl_ms(self, key: str) -> int | None:
        ttl = int(self.client.pttl(key))
        return None if ttl < 0 else ttl

    def get(self, key: str) -> Stored | None:
        return self._stored(key, self._hmget(key))

    def _many(self, keys: list[str], replies: list[Any]) -> list[Stored | CodecError | None]:
        # One bad entry must not hide the others: its CodecError takes its place.
        out: list[Stored | CodecError | None] = []
        for key, raw in zip(keys, replies, strict=True):
            if isinstance(raw, Exception):  # a pipeline run with raise_on_error=False
                if not wrong_type(raw):
                    raise raw
                out.append(foreign_key(key, raw))
                continue
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
        return self._many(keys, pipe.execute(raise_on_error=False))

    async def aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        client = await self.aclient()
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, self._read_fields)
        return self._many(keys, await pipe.execute(raise_on_error=False))

    async def aget(self, key: str) -> Stored | None:
        client = self._aclients.current()  # the hot path: two coroutines fewer
        if client is None:
            client = await self.aclient()
        try:
            raw = await client.hmget(key, self._read_fields)
        except (redis.ResponseError, redis.ConnectionError) as exc:
            problem = await self._aunreadable(key, client, exc)
            if problem is None:
                raise
            raise problem from exc
        return self._stored(key, raw)

    def set(self, entry: Entry, ttl_ms: int) -> None:
        self._learn_limits()
        mapping = self._mapping(entry, entry.embedding is not None and self._vectors_writable())
        try:
            self._writer.write(self.client, entry.key, mapping, ttl_ms)
        except (redis.ResponseError, redis.ConnectionError) as exc:
            problem = self._refused(exc, entry_size(mapping)[1])
            if problem is None:
                raise
            raise problem from exc

    def _queue_writes(
        self, pipe: Any, entries: list[Entry], ttl_ms: int, vectors: bool
    ) -> tuple[int, int]:
        """Queue UNLINK + HSET + PEXPIRE per storable entry; returns how many, and the
        size in bytes of the largest."""
        count = largest = 0
        for entry in entries:
            try:
                mapping = self._mapping(entry, vectors)
            except CodecError:
                continue  # the codec or the server's limits refuse it: skipped
            pipe.unlink(entry.key)
            pipe.hset(entry.key, mapping=mapping)
            pipe.pexpire(entry.key, ttl_ms)
            count += 1
            largest = max(largest, entry_size(mapping)[1])
        return count, largest

    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        """Several writes, one MULTI/EXEC per CACHE_BATCH_SIZE entries (each key with its
        TTL). `bulk=True` (explicit bulk loads) uses a client with a long timeout:
        RediSearch indexes inside HSET, and a batch of HNSW inserts can take seconds, far
        beyond the hot path's socket timeout. Returns how many entries were written."""
        self._learn_limits()
        vectors = any(e.embedding is not None for e in entries) and self._vectors_writable()
        client = self.client
        if bulk:
            if self._bulk_client is None:
                self._bulk_client = self._connect({**self._opts, "socket_timeout": BULK_TIMEOUT})
            client = self._bulk_client
        written = 0
        for start in range(0, len(entries), self.batch_size):
            pipe = client.pipeline(transaction=True)
            count, largest = self._queue_writes(
                pipe, entries[start : start + self.batch_size], ttl_ms, vectors
            )
            if count:
                try:
                    pipe.execute()
                except (redis.ResponseError, redis.ConnectionError) as exc:
                    problem = self._refused(exc, largest)
                    if problem is None:
                        raise
                    raise problem from exc
                written += count
        return written

    async def _avectors_writable(self, embedded: bool) -> bool:
        """`_vectors_writable` for asyncio writers that carry an embedding (`embedded`),
        without a thread hop once the index is known to be ready."""
        return embedded and (self._index_ready or await asyncio.to_thread(self._vectors_writable))

    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int:
        """`set_many` for asyncio callers, in one MULTI/EXEC (small batches)."""
        await self._alearn_limits()
        vectors = await self._avectors_writable(any(e.embedding is not None for e in entries))
        client = await self.aclient()
        pipe = client.pipeline(transaction=True)
        written, largest = self._queue_writes(pipe, entries, ttl_ms, vectors)
        if written:
            try:
                await pipe.execute()
            except (redis.ResponseError, redis.ConnectionError) as exc:
                problem = await self._arefused(exc, largest)
                if problem is None:
                    raise
                raise problem from exc
        return written

    async def aset(self, entry: Entry, ttl_ms: int) -> None:
        # Every miss writes: steps that are no-ops once set up cost no coroutine here.
        vectors = entry.embedding is not None and await self._avectors_writable(True)
        if not self._limits.learned:
            await self._alearn_limits()
        mapping = self._mapping(entry, vectors)
        client = self._aclients.current() or await self.aclient()
        try:
            await self._writer.awrite(client, entry.key, mapping, ttl_ms)
        except (redis.ResponseError, redis.ConnectionError) as exc:
            problem = await self._arefused(exc, entry_size(mapping)[1])
            if problem is None:
                raise
            raise problem from exc

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
