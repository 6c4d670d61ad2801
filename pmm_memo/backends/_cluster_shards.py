"""The cluster backend's per-shard failure policy (a mixin of `RedisClusterBackend`).

A breaker per primary, keyed by host:port: a timeout or refused connection on one shard
opens only its breaker. Its keys are then misses, counted and logged once, for
CACHE_BREAKER_INTERVAL, then one probe; keys on healthy shards are served as usual.
The cluster client's own retries are off (see `_cluster_connect`), so a frozen shard
costs one timeout, not one per retry. MOVED/ASK are followed by redis-py and are not
failures. A gate bounds operations in flight per process (threads) and per event loop,
as one server's blocking pool does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.crc import key_slot

from .._breaker import CircuitBreaker
from .._errors import ShardUnavailableError
from ._gate import Gate, acquire_async
from ._limits import wrong_type

logger = logging.getLogger("pmm_memo")
T = TypeVar("T")
# Queues the i-th command of a batch on a cluster pipeline.
Queue = Callable[[Any, int], object]

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


def _retrying(shard: str, exc: BaseException) -> None:
    # Debug level: expected after a restart; many of them mean connections are being
    # closed under the cache (tests assert there are none in steady state).
    logger.debug("cache cluster node %s: %s; retried once", shard, exc)


class ShardPolicy:
    # Provided by RedisClusterBackend.
    if TYPE_CHECKING:
        client: Any  # a redis.cluster.RedisCluster

        async def aclient(self) -> Any: ...

    def _init_shards(
        self, breaker_interval: float, max_connections: int, pool_timeout: float
    ) -> None:
        self._cluster_lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._breaker_interval = breaker_interval
        self._degraded = False  # some shard's breaker is open (or was, until its probe)
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._replies: dict[str, int] = {}  # per shard: evidence it is up (see _classify)
        self._slots = Gate(max_connections, pool_timeout)
        self._agates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

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
        self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    def _loop_gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._agates.get(loop)
        if gate is None:
            gate = self._agates.setdefault(loop, asyncio.Semaphore(self._max_connections))
        return gate

    @contextlib.asynccontextmanager
    async def _agate(self) -> AsyncIterator[None]:
        """`_gate` for the running event loop (each loop has its own client and gate)."""
        gate = self._loop_gate()
        await acquire_async(gate, self._pool_timeout)
        try:
            yield
        finally:
            gate.release()

    def _keyed(self, key: str, op: Callable[[], T]) -> T:
        # `_gate` written out: the exact-hit path, where a context manager costs ~1 us.
        slots = self._slots
        slots.acquire()
        try:
            return self._keyed_now(key, op)
        finally:
            slots.release()

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
                _retrying(shard, exc)
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
        gate = self._loop_gate()
        await acquire_async(gate, self._pool_timeout)
        try:
            return await self._akeyed_now(key, op)
        finally:
            gate.release()

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
                _retrying(shard, exc)
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
            if isinstance(r, Exception) and not isinstance(r, SHARD_ERRORS) and not wrong_type(r):
                raise r  # WRONGTYPE: that key's problem, see RedisBackend._many
        return [None if isinstance(r, SHARD_ERRORS) else r for r in results]

    def _pipelined(self, client: Any, shards: list[str], queue: Queue) -> list[Any]:
        """One cluster pipeline of `len(shards)` commands (the i-th on `shards[i]`):
        replies in order, a shard's failure in place of its commands' replies.

        Why not one `execute(raise_on_error=False)`: when a primary refuses the
        connection redis-py raises for the whole pipeline, without naming the primary,
        and every other shard's replies are lost. Passed on, that one dead primary read
        as the whole cluster failing and switched the cache off. The batch is then re-run
        one pipeline per shard, so the failure lands on its own shard (`_settle`)."""
        if not shards:
            return []
        try:
            return self._pipe_run(client, range(len(shards)), queue)
        except SHARD_ERRORS:
            pass
        out: list[Any] = [None] * len(shards)
        for group in _by_shard(shards).values():
            try:
                replies = self._pipe_run(client, group, queue)
            except SHARD_ERRORS as exc:
                replies = [exc] * len(group)
            for i, r in zip(group, replies, strict=True):
                out[i] = r
        return out

    @staticmethod
    def _pipe_run(client: Any, which: Iterable[int], queue: Queue) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for i in which:
            queue(pipe, i)
        return list(pipe.execute(raise_on_error=False))

    async def _apipelined(self, client: Any, shards: list[str], queue: Queue) -> list[Any]:
        """`_pipelined` on the asyncio cluster client."""
        if not shards:
            return []
        try:
            return await self._apipe_run(client, range(len(shards)), queue)
        except SHARD_ERRORS:
            pass
        out: list[Any] = [None] * len(shards)
        for group in _by_shard(shards).values():
            try:
                replies = await self._apipe_run(client, group, queue)
            except SHARD_ERRORS as exc:
                replies = [exc] * len(group)
            for i, r in zip(group, replies, strict=True):
                out[i] = r
        return out

    @staticmethod
    async def _apipe_run(client: Any, which: Iterable[int], queue: Queue) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for i in which:
            queue(pipe, i)
        return list(await pipe.execute(raise_on_error=False))

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


def _by_shard(shards: list[str]) -> dict[str, list[int]]:
    """Positions of a batch's commands, grouped by the shard each goes to."""
    groups: dict[str, list[int]] = {}
    for i, shard in enumerate(shards):
        groups.setdefault(shard, []).append(i)
    return groups
