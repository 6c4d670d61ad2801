"""Redis Cluster backend: the Redis backend's entries and encoding, on redis-py's own
cluster clients (`redis.cluster.RedisCluster`, `redis.asyncio.cluster.RedisCluster`).

What changes on a cluster, and why:

- Keys carry no hash tag, so entries spread over every slot (a hot tenant is not held
  on one node). Every per-key operation is one slot: reads (HMGET), writes (the
  one-key script of `_write`: UNLINK + HSET + PEXPIRE atomically), locks (SET NX PX and
  the owner-only release script), invalidation (UNLINK). `set_many` sends one script
  call per entry in a non-transactional cluster pipeline: one round trip per primary,
  each entry atomic with its TTL (MULTI/EXEC cannot span slots).
- Whole-cluster operations visit every primary: tenant SCANs (redis-py's cluster
  `scan_iter`), statistics, memory (summed), `nodes_health()`.
- Failure policy per shard: a breaker per primary (keyed by host:port). A timeout or
  refused connection on one shard opens only its breaker: its keys are misses, counted
  and logged once, for CACHE_BREAKER_INTERVAL, then one probe; keys on healthy shards
  are served as usual. The client's own retries are off (see `_cluster_connect`), so a
  frozen shard costs one timeout, not one per retry. MOVED/ASK are followed by redis-py
  and are not failures.
- Semantic search: one index per primary, see `_cluster_index`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import redis
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

from .._breaker import CircuitBreaker
from .._errors import CodecError, ShardUnavailableError
from ._base import Entry, Stored
from ._cluster_connect import async_cluster_client, sync_cluster_client
from ._cluster_search import ClusterSearch
from ._write import SCRIPT, _args
from .redis import BULK_TIMEOUT, RedisBackend

logger = logging.getLogger("pmm_memo")
T = TypeVar("T")

# What a shard's failure looks like from redis-py (a whole-cluster failure to even read
# the slot map is a redis.ConnectionError raised before any shard is chosen).
SHARD_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
    OSError,
)


# One immediate retry on a closed connection (a socket the server or a topology refresh
# closed), as the single-server client does; never on timeouts (a frozen shard must cost
# one timeout) nor on a full pool.
_STALE = redis.ConnectionError
_NOT_STALE = (redis.TimeoutError, redis.exceptions.MaxConnectionsError)


class RedisClusterBackend(ClusterSearch, RedisBackend):
    name = "redis"
    cluster = True

    def __init__(self, url: str, *, breaker_interval: float = 5.0, **kwargs: Any) -> None:
        self._cluster: redis.cluster.RedisCluster | None = None
        self._cluster_lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breaker_interval = breaker_interval
        self._degraded = False  # some shard's breaker is open (or was, until its probe)
        self._max_connections = int(kwargs.get("max_connections", 50))
        self._pool_timeout = float(kwargs.get("pool_timeout", 10.0))
        self._replies: dict[str, int] = {}  # per shard: evidence it is up (see _classify)
        self._slots = threading.BoundedSemaphore(self._max_connections)
        self._agates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__(url, **kwargs)
        self._opts.pop("health_check_interval", None)
        self._init_search()

    # -- clients (lazy: a cluster client reads the slot map when it is built) ---------------

    @property
    def client(self) -> Any:
        cluster = self._cluster
        if cluster is None:
            with self._cluster_lock:
                if self._cluster is None:
                    self._cluster = sync_cluster_client(self.url, self._opts)
                cluster = self._cluster
        return cluster

    @client.setter
    def client(self, value: Any) -> None:
        self._cluster = value

    def _connect(self, options: dict[str, Any]) -> Any:
        # Called by RedisBackend.__init__: None defers the connection to first use, so a
        # cluster that is down at start-up costs misses, not a failed constructor.
        return None

    async def aclient(self) -> Any:
        """The running loop's cluster client, its slot map read before first use: left
        to redis-py's lazy start, thousands of concurrent first calls race the start-up
        and tear down each other's connections (measured: every call failed)."""
        client: Any = await self._aclients.get()
        if client._initialize:  # redis-py: "not started yet"
            await client.initialize()  # it takes its own lock
        return client

    def _aconnect(self) -> Any:
        return async_cluster_client(self.url, self._opts)

    async def _aclose(self, client: Any) -> None:
        await client.aclose()

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        if self._bulk_client is not None:
            self._bulk_client.close()

    # -- per-shard failure policy ------------------------------------------------------------

    def shard_of(self, key: str, client: Any = None) -> str:
        """host:port of the primary that owns `key`'s slot (by the client's slot map)."""
        manager = (client or self.client).nodes_manager
        nodes = manager.slots_cache.get(key_slot(key.encode("utf-8", "surrogatepass")))
        return str(nodes[0].name) if nodes else "unknown"

    def breaker(self, shard: str) -> CircuitBreaker:
        b = self._breakers.get(shard)
        if b is None:
            with self._cluster_lock:
                b = self._breakers.setdefault(shard, CircuitBreaker(self._breaker_interval))
        return b

    def open_shards(self) -> list[str]:
        return sorted(name for name, b in self._breakers.items() if b.is_open)

    def _admit(self, shard: str) -> CircuitBreaker:
        b = self.breaker(shard)
        if b.is_open and not b.allow():
            raise ShardUnavailableError(f"cluster node {shard} is down; its keys are skipped")
        return b

    def _shard_failed(self, shard: str, exc: BaseException) -> Exception:
        if isinstance(exc, redis.exceptions.MaxConnectionsError):
            return exc  # load in this process, not the shard failing
        opened = self.breaker(shard).record_failure()
        self._degraded = True
        if opened:
            logger.warning(
                "cache cluster node %s unavailable (%s: %s); its keys go to the function "
                "for %.1fs, other nodes are unaffected",
                shard,
                type(exc).__name__,
                exc,
                self._breaker_interval,
            )
        return ShardUnavailableError(f"cluster node {shard}: {type(exc).__name__}: {exc}")

    def _shard_ok(self, shard: str, b: CircuitBreaker) -> None:
        if b.is_open and b.record_success():
            logger.info("cache cluster node %s reachable again", shard)
            self._degraded = any(x.is_open for x in list(self._breakers.values()))

    @contextlib.contextmanager
    def _gate(self) -> Iterator[None]:
        """At most CACHE_MAX_CONNECTIONS operations in flight (threads): callers beyond it
        wait up to CACHE_POOL_TIMEOUT, as with one server's blocking pool. redis-py's
        cluster pools would raise at once instead ("Too many connections")."""
        if not self._slots.acquire(timeout=self._pool_timeout):
            raise redis.exceptions.MaxConnectionsError(
                f"no free connection within {self._pool_timeout}s (CACHE_MAX_CONNECTIONS)"
            )
        try:
            yield
        finally:
            self._slots.release()

    @contextlib.asynccontextmanager
    async def _agate(self) -> AsyncIterator[None]:
        """`_gate` for the running event loop (each loop has its own client and gate)."""
        loop = asyncio.get_running_loop()
        gate = self._agates.get(loop)
        if gate is None:
            gate = self._agates.setdefault(loop, asyncio.Semaphore(self._max_connections))
        try:
            await asyncio.wait_for(gate.acquire(), self._pool_timeout)
        except TimeoutError:
            raise redis.exceptions.MaxConnectionsError(
                f"no free connection within {self._pool_timeout}s (CACHE_MAX_CONNECTIONS)"
            ) from None
        try:
            yield
        finally:
            gate.release()

    def _keyed(self, key: str, op: Callable[[], T]) -> T:
        with self._gate():
            return self._keyed_now(key, op)

    def _keyed_now(self, key: str, op: Callable[[], T]) -> T:
        shard = self.shard_of(key)
        b = self._admit(shard) if self._degraded else None
        since = self._replies.get(shard, 0)
        try:
            try:
                result = op()
            except _STALE as exc:
                if isinstance(exc, _NOT_STALE):
                    raise
                result = op()  # one immediate retry: a pooled socket the server closed
        except SHARD_ERRORS as exc:
            raise self._classify(shard, since, exc) from exc
        self._replies[shard] = since + 1  # a lost increment only weakens the evidence
        if b is not None:
            self._shard_ok(shard, b)
        return result

    def _classify(self, shard: str, since: int, exc: BaseException) -> Exception:
        """A timeout on a shard that answered other calls meanwhile is load in this
        process (a burst of connects, a busy loop), not the shard failing: busy, and its
        breaker stays closed (the rule `Cache` applies to a single server)."""
        if isinstance(exc, redis.TimeoutError) and self._replies.get(shard, 0) != since:
            return redis.exceptions.MaxConnectionsError(
                f"cluster node {shard} is answering other calls: {exc}"
            )
        return self._shard_failed(shard, exc)

    async def _akeyed(self, key: str, op: Callable[[], Awaitable[T]]) -> T:
        async with self._agate():
            return await self._akeyed_now(key, op)

    async def _akeyed_now(self, key: str, op: Callable[[], Awaitable[T]]) -> T:
        shard = self.shard_of(key, await self.aclient())
        b = self._admit(shard) if self._degraded else None
        since = self._replies.get(shard, 0)
        try:
            try:
                result = await op()
            except _STALE as exc:
                if isinstance(exc, _NOT_STALE):
                    raise
                result = await op()
        except SHARD_ERRORS as exc:
            raise self._classify(shard, since, exc) from exc
        self._replies[shard] = since + 1
        if b is not None:
            self._shard_ok(shard, b)
        return result

    def _split(self, keys: list[str], client: Any) -> tuple[list[int], list[str]]:
        """Positions of the keys whose shard may be tried now, and each key's shard."""
        shards = [self.shard_of(k, client) for k in keys]
        admitted = []
        for i, shard in enumerate(shards):
            b = self.breaker(shard)
            if not b.is_open or b.allow():
                admitted.append(i)
        return admitted, shards

    def _settle(self, results: list[Any], shards: list[str]) -> list[Any]:
        """Per-shard outcome of a pipeline run with raise_on_error=False."""
        failed: dict[str, BaseException] = {}
        for shard, r in zip(shards, results, strict=True):
            if isinstance(r, SHARD_ERRORS):
                failed.setdefault(shard, r)
        for shard, exc in failed.items():
            self._shard_failed(shard, exc)
        for shard in set(shards) - set(failed):
            self._shard_ok(shard, self.breaker(shard))
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, SHARD_ERRORS):
                raise r
        return [None if isinstance(r, SHARD_ERRORS) else r for r in results]

    # -- exact reads -------------------------------------------------------------------------

    def get(self, key: str) -> Stored | None:
        return self._keyed(key, lambda: RedisBackend.get(self, key))

    async def aget(self, key: str) -> Stored | None:
        return await self._akeyed(key, lambda: RedisBackend.aget(self, key))

    def _read_many(self, keys: list[str], replies: list[Any]) -> list[Stored | CodecError | None]:
        empty = [None] * len(self._read_fields)
        return self._many(keys, [empty if r is None else r for r in replies])

    def get_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        with self._gate():
            return self._get_many(keys)

    def _get_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        """HMGETs in one cluster pipeline (one round trip per primary); keys on an open
        shard are misses without a round trip."""
        client = self.client
        admitted, shards = self._split(keys, client)
        pipe = client.pipeline(transaction=False)
        for i in admitted:
            pipe.hmget(keys[i], self._read_fields)
        results = self._settle(
            pipe.execute(raise_on_error=False) if admitted else [], [shards[i] for i in admitted]
        )
        replies: list[Any] = [None] * len(keys)
        for i, r in zip(admitted, results, strict=True):
            replies[i] = r
        return self._read_many(keys, replies)

    async def aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        async with self._agate():
            return await self._aget_many(keys)

    async def _aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        client = await self.aclient()
        admitted, shards = self._split(keys, client)
        pipe = client.pipeline(transaction=False)
        for i in admitted:
            pipe.hmget(keys[i], self._read_fields)
        raw = await pipe.execute(raise_on_error=False) if admitted else []
        results = self._settle(list(raw), [shards[i] for i in admitted])
        replies: list[Any] = [None] * len(keys)
        for i, r in zip(admitted, results, strict=True):
            replies[i] = r
        return self._read_many(keys, replies)

    # -- writes ------------------------------------------------------------------------------

    def set(self, entry: Entry, ttl_ms: int) -> None:
        self._keyed(entry.key, lambda: RedisBackend.set(self, entry, ttl_ms))

    async def aset(self, entry: Entry, ttl_ms: int) -> None:
        await self._akeyed(entry.key, lambda: RedisBackend.aset(self, entry, ttl_ms))

    def raise_min_similarity(self, key: str, similarity: float) -> bool:
        return self._keyed(key, lambda: RedisBackend.raise_min_similarity(self, key, similarity))

    async def araise_min_similarity(self, key: str, similarity: float) -> bool:
        return await self._akeyed(
            key, lambda: RedisBackend.araise_min_similarity(self, key, similarity)
        )

    def _queue_scripts(self, pipe: Any, entries: list[Entry], ttl_ms: int, vectors: bool) -> int:
        """One EVAL of the write script per storable entry: atomic per key, any slots."""
        count = 0
        for entry in entries:
            try:
                mapping = self._mapping(entry, vectors)
            except CodecError:
                continue
            pipe.execute_command("EVAL", SCRIPT, *_args(entry.key, mapping, ttl_ms))
            count += 1
        return count

    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        vectors = any(e.embedding is not None for e in entries) and self._vectors_writable()
        client = self.client
        if bulk:
            if self._bulk_client is None:
                self._bulk_client = sync_cluster_client(  # type: ignore[assignment]
                    self.url, {**self._opts, "socket_timeout": BULK_TIMEOUT}
                )
            client = self._bulk_client
        written = 0
        for start in range(0, len(entries), self.batch_size):
            pipe = client.pipeline(transaction=False)
            count = self._queue_scripts(
                pipe, entries[start : start + self.batch_size], ttl_ms, vectors
            )
            if count:
                for r in pipe.execute(raise_on_error=False):
                    if isinstance(r, Exception):
                        raise r
                written += count
        return written

    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int:
        vectors = any(e.embedding is not None for e in entries) and (
            self._index_ready or await asyncio.to_thread(self._vectors_writable)
        )
        client = await self.aclient()
        pipe = client.pipeline(transaction=False)
        written = self._queue_scripts(pipe, entries, ttl_ms, vectors)
        if written:
            for r in await pipe.execute(raise_on_error=False):
                if isinstance(r, Exception):
                    raise r
        return written

    def delete(self, key: str) -> bool:
        return self._keyed(key, lambda: RedisBackend.delete(self, key))

    async def adelete(self, key: str) -> bool:
        return await self._akeyed(key, lambda: RedisBackend.adelete(self, key))

    # -- locks: one key each, on its own slot ------------------------------------------------

    def try_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        return self._keyed(name, lambda: RedisBackend.try_lock(self, name, token, ttl_ms))

    def unlock(self, name: str, token: str) -> None:
        self._keyed(name, lambda: RedisBackend.unlock(self, name, token))

    def lock_held(self, name: str) -> bool:
        return self._keyed(name, lambda: RedisBackend.lock_held(self, name))

    async def atry_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        return await self._akeyed(name, lambda: RedisBackend.atry_lock(self, name, token, ttl_ms))

    async def aunlock(self, name: str, token: str) -> None:
        await self._akeyed(name, lambda: RedisBackend.aunlock(self, name, token))

    async def alock_held(self, name: str) -> bool:
        return await self._akeyed(name, lambda: RedisBackend.alock_held(self, name))

    # -- whole cluster -----------------------------------------------------------------------

    def _whole(self, op: Callable[[], T]) -> T:
        """A whole-cluster operation: refused at once while a shard's breaker is open (a
        SCAN of a frozen shard would cost a timeout per call), else run; a shard that
        fails opens its breaker."""
        down = self.open_shards()
        if down:
            raise ShardUnavailableError(f"cluster node(s) {', '.join(down)} down; skipped")
        try:
            return op()
        except SHARD_ERRORS as exc:
            conn = getattr(exc, "connection", None)
            host, port = getattr(conn, "host", None), getattr(conn, "port", None)
            raise self._shard_failed(f"{host}:{port}" if host else "unknown", exc) from exc

    def clear(
        self, tenant: str, fn: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        return self._whole(lambda: RedisBackend.clear(self, tenant, fn, progress))

    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None:
        return self._whole(lambda: RedisBackend.count(self, tenant, fn))

    def tenants(self) -> dict[str, int]:
        return self._whole(lambda: RedisBackend.tenants(self))

    def memory_used(self) -> int:
        """used_memory summed over the primaries."""
        client = self.client
        # Explicit node lists: redis-py's node flags ("primaries") do not reach keyless
        # commands here, and a list also makes the reply one entry per node.
        replies = client.info("memory", target_nodes=client.get_primaries())
        if isinstance(replies, dict) and "used_memory" in replies:
            return int(replies["used_memory"])  # a single primary answers unwrapped
        return sum(int(r.get("used_memory", 0)) for r in replies.values())

    def ping(self) -> float:
        """Milliseconds for a PING of every primary (raises if any fails)."""
        start = time.perf_counter()
        client = self.client
        client.ping(target_nodes=client.get_primaries())
        return (time.perf_counter() - start) * 1000.0
