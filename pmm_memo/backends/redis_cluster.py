"""Redis Cluster backend: the Redis backend's entries and encoding, on redis-py's own
cluster clients (`redis.cluster.RedisCluster`, `redis.asyncio.cluster.RedisCluster`).

What changes on a cluster, and why:

- Keys carry no hash tag, so entries spread over every slot (a hot tenant is not held
  on one node; a tenant whose own name holds a tag is warned about, see
  `_cluster_tags`). Every per-key operation is one slot: reads (HMGET), writes (the
  one-key script of `_write`: UNLINK + HSET + PEXPIRE atomically), locks (SET NX PX and
  the owner-only release script), invalidation (UNLINK). `set_many` sends one script
  call per entry in a non-transactional cluster pipeline: one round trip per primary,
  each entry atomic with its TTL (MULTI/EXEC cannot span slots).
- Whole-cluster operations visit every primary: tenant SCANs (redis-py's cluster
  `scan_iter`), statistics, memory (summed), `nodes_health()`.
- Failure policy per shard: a breaker per primary, see `_cluster_shards`.
- Semantic search: one index per primary, see `_cluster_index`.
- Fork: a child never uses the cluster client it inherits (see `_after_fork_in_child`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster

from .. import _forksafe
from .._errors import CodecError
from ._base import Entry, Stored
from ._cluster_connect import async_cluster_client, sync_cluster_client
from ._cluster_search import ClusterSearch
from ._cluster_shards import SHARD_ERRORS, ShardPolicy
from ._cluster_tags import TenantTags
from ._write import SCRIPT, _args
from .redis import BULK_TIMEOUT, RedisBackend

# A forked child's inherited cluster clients, kept referenced and unused: collecting one
# runs its close(), which takes the client's lock, possibly held by a parent thread.
_ORPHANS: list[Any] = []


class RedisClusterBackend(ShardPolicy, ClusterSearch, RedisBackend):
    name = "redis"
    cluster = True
    reads_ahead = False  # a key lives on one primary, the KNN runs on all (_read_ahead)

    def __init__(self, url: str, *, breaker_interval: float = 5.0, **kwargs: Any) -> None:
        self._cluster: redis.cluster.RedisCluster | None = None
        self._commands: dict[str, Any] | None = None  # the first asyncio client's table
        self._init_shards(
            breaker_interval,
            int(kwargs.get("max_connections", 50)),
            float(kwargs.get("pool_timeout", 10.0)),
        )
        super().__init__(url, **kwargs)
        self._opts.pop("health_check_interval", None)
        self._init_search()
        self._tags = TenantTags()  # warns once per tenant whose keys carry a hash tag
        _forksafe.track(self)

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

    def _fork_lock(self) -> None:
        return None  # a client build may take a connect timeout per node: never waited for

    def _after_fork_in_child(self) -> None:
        """redis-py's sync cluster client guards its slot map and nodes with locks of its
        own (taken on every command) that nothing resets after a fork; one held by a
        parent thread at that instant (a command in flight, the stats flush, the client
        being built under `_cluster_lock`) would hang the child's first call forever.
        The child builds its own client on first use (one slot-map read) instead."""
        _ORPHANS.extend(c for c in (self._cluster, self._bulk_client) if c is not None)
        self._cluster_lock = threading.Lock()
        self._cluster = None
        self._bulk_client = None

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
            # redis-py reads the slot map from its startup nodes in random order: one
            # that is frozen cost each new loop (each asyncio.run) a timeout, half the
            # time, though its breaker was open. Such a node is asked last.
            down = self.open_shards()
            await client.initialize(last_failed_node_name=down[0] if down else None)
            if self._commands is None:
                self._commands = client.commands_parser.commands
        return client

    def _aconnect(self) -> Any:
        # Later loops' clients skip reading COMMAND (see _cluster_connect.KnownCommands).
        return async_cluster_client(self.url, self._opts, self._commands)

    async def _aclose(self, client: Any) -> None:
        await client.aclose()

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        if self._bulk_client is not None:
            self._bulk_client.close()

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
        on = [shards[i] for i in admitted]
        raw = self._pipelined(
            client, on, lambda p, j: p.hmget(keys[admitted[j]], self._read_fields)
        )
        return self._placed(keys, admitted, self._settle(raw, on))

    def _placed(
        self, keys: list[str], admitted: list[int], results: list[Any]
    ) -> list[Stored | CodecError | None]:
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
        on = [shards[i] for i in admitted]
        raw = await self._apipelined(
            client, on, lambda p, j: p.hmget(keys[admitted[j]], self._read_fields)
        )
        return self._placed(keys, admitted, self._settle(raw, on))

    # -- writes ------------------------------------------------------------------------------

    def set(self, entry: Entry, ttl_ms: int) -> None:
        self._tags.note(entry.tenant, entry.key)
        self._keyed(entry.key, lambda: RedisBackend.set(self, entry, ttl_ms))

    async def aset(self, entry: Entry, ttl_ms: int) -> None:
        self._tags.note(entry.tenant, entry.key)
        await self._akeyed(entry.key, lambda: RedisBackend.aset(self, entry, ttl_ms))

    def raise_min_similarity(self, key: str, similarity: float) -> bool:
        return self._keyed(key, lambda: RedisBackend.raise_min_similarity(self, key, similarity))

    async def araise_min_similarity(self, key: str, similarity: float) -> bool:
        return await self._akeyed(
            key, lambda: RedisBackend.araise_min_similarity(self, key, similarity)
        )

    def _learn_limits(self) -> None:
        """CONFIG GET goes to a random node: one that is down leaves the limits unknown
        until a later write asks again, and fails no write (was: the raw error made the
        whole cache look down)."""
        with contextlib.suppress(*SHARD_ERRORS):
            RedisBackend._learn_limits(self)

    async def _alearn_limits(self) -> None:
        with contextlib.suppress(*SHARD_ERRORS):
            await RedisBackend._alearn_limits(self)

    def _scripts(
        self, entries: list[Entry], ttl_ms: int, vectors: bool
    ) -> list[tuple[str, list[Any]]]:
        """(key, EVAL arguments of the write script) per storable entry: atomic per key."""
        out = []
        for entry in entries:
            self._tags.note(entry.tenant, entry.key)
            try:
                mapping = self._mapping(entry, vectors)
            except CodecError:
                continue
            out.append((entry.key, ["EVAL", SCRIPT, *_args(entry.key, mapping, ttl_ms)]))
        return out

    def _written(self, results: list[Any], shards: list[str]) -> int:
        """Writes acknowledged; a failed shard's are skipped (its breaker opens), any
        other error is raised as before."""
        self._settle(results, shards)
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, SHARD_ERRORS):
                raise r
        return sum(1 for r in results if not isinstance(r, Exception))

    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        self._learn_limits()
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
            scripts = self._scripts(entries[start : start + self.batch_size], ttl_ms, vectors)
            written += self._write_batch(client, scripts)
        return written

    def _write_batch(self, client: Any, scripts: list[tuple[str, list[Any]]]) -> int:
        admitted, shards = self._split([key for key, _ in scripts], client)
        on = [shards[i] for i in admitted]
        raw = self._pipelined(client, on, lambda p, j: p.execute_command(*scripts[admitted[j]][1]))
        return self._written(raw, on)

    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int:
        await self._alearn_limits()
        vectors = await self._avectors_writable(any(e.embedding is not None for e in entries))
        client = await self.aclient()
        scripts = self._scripts(entries, ttl_ms, vectors)
        admitted, shards = self._split([key for key, _ in scripts], client)
        on = [shards[i] for i in admitted]
        raw = await self._apipelined(
            client, on, lambda p, j: p.execute_command(*scripts[admitted[j]][1])
        )
        return self._written(raw, on)

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
