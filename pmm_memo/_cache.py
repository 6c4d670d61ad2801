"""`Cache`: a backend plus the policy around it, shared by decorators and the manager.

Failure policy (fail open): a backend error never reaches the caller of a decorated
function. A read that fails is a miss, a write that fails is skipped; either is counted in
`errors`. A connection failure or timeout opens the circuit breaker, and while it is open
the backend is not called at all, so an outage costs one timeout per
CACHE_BREAKER_INTERVAL, not one per call. One warning is logged when an outage starts and
one info line when it ends. Entries that fail to decode or verify are counted as
`corrupt` and treated as misses (the recomputed result overwrites them); results the
codec cannot store are returned to the caller, counted as `uncacheable`, logged once.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, cast

from . import _forksafe
from ._binding import MISSING
from ._breaker import CircuitBreaker
from ._cache_embedding import CacheEmbedding
from ._cache_failures import _busy_errors, _connection_errors, _timeouts
from ._cache_locks import CacheLocks
from ._cache_read_ahead import CacheReadAhead
from ._codec import Codec
from ._config import CacheConfig
from ._digests import Digests, hash_seed
from ._errors import CodecError
from ._shared_stats import SharedStats
from ._singleflight import AsyncSingleFlight, SingleFlight
from ._stats import Counters
from .backends._base import (
    Backend,
    Entry,
    Neighbour,
    ReadsAhead,
    Stored,
    VectorQuery,
)

if TYPE_CHECKING:
    from ._embedder_id import EmbedderId
    from .embedders import Embedder

logger = logging.getLogger("pmm_memo")

# A reported wrong hit's similarity is raised by this much: the same query (same vector)
# scores the same on the next lookup, within float32 rounding, and must now fall short.
MIN_SIMILARITY_MARGIN = 1e-5


class Cache(CacheEmbedding, CacheLocks, CacheReadAhead):
    """Owns one backend, its codec, breaker, counters and single-flight tables. The
    failure policy is `CacheFailures`, the embedder `CacheEmbedding`, the cross-process
    locks `CacheLocks`."""

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        backend: Backend | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        if config is not None and not isinstance(config, CacheConfig):
            # A URL or a dict of settings failed later, as "'str' object has no attribute
            # 'enabled'" (CacheManager(config) too).
            raise TypeError(
                f"Cache(config) takes a CacheConfig, e.g. CacheConfig(redis_url=...) or "
                f"CacheConfig.from_env(), got {type(config).__name__}"
            )
        self.config = config if config is not None else CacheConfig.from_env()
        cfg = self.config
        self.enabled = cfg.enabled
        self.key_prefix = cfg.key_prefix
        self.hash_seed = hash_seed(cfg.hash_secret)
        self.digests = Digests(cfg.hash_secret)
        self.codec = Codec(
            allow_pickle=cfg.codec == "pickle",
            signing_key=cfg.signing_key,
            max_bytes=cfg.max_value_bytes,
        )
        self.breaker = CircuitBreaker(cfg.breaker_interval)
        self.embed_breaker = CircuitBreaker(cfg.breaker_interval)
        self.embeddings = 0
        self.flight = SingleFlight()
        self.aflight = AsyncSingleFlight()
        self.counters = Counters()
        self._embedder = embedder
        self._embedder_ready = False
        self._embedder_lock = threading.Lock()
        self._embedder_id: EmbedderId | None = None
        self._vectors = {}  # recent query vectors, see _cache_embedding
        _forksafe.track(self)
        self._logged: set[str] = set()
        self.backend: Backend = backend if backend is not None else self._make_backend()
        self._connection_errors = _connection_errors(self.backend)
        self._busy_errors = _busy_errors(self.backend)
        self._timeouts = _timeouts(self.backend)
        # Replies received so far (evidence that the server is up; see _failed). A plain
        # counter: a lost increment under contention only weakens one piece of evidence.
        self.replies = 0
        # The embedded backend proves an entry with the key material itself.
        self.check_is_material = self.backend.name == "memory"
        # The exact read and the KNN in one round trip, when the backend can (_read_ahead).
        self.reads_ahead = (
            cast("ReadsAhead", self.backend)
            if getattr(self.backend, "reads_ahead", False)
            else None
        )
        # A factory, not the client: the cluster backend connects on first use.
        self.stats = SharedStats(getattr(self.backend, "stats_client", None))

    def check_of(self, material: bytes) -> str | bytes:
        """What an entry stores to prove it is the one for this key material."""
        return material if self.check_is_material else self.digests.check(material)

    def _make_backend(self) -> Backend:
        cfg = self.config
        if cfg.redis_url is None:
            from .backends.memory import MemoryBackend

            return MemoryBackend(
                max_entries=cfg.memory_max_entries,
                max_bytes=cfg.memory_max_bytes,
                max_value_bytes=cfg.max_value_bytes,
            )
        from .backends._cluster_connect import is_cluster_url
        from .backends.redis import RedisBackend

        cls: Any = RedisBackend
        extra: dict[str, Any] = {}
        if is_cluster_url(cfg.redis_url):
            from .backends.redis_cluster import RedisClusterBackend

            cls, extra = RedisClusterBackend, {"breaker_interval": cfg.breaker_interval}
        return cls(  # type: ignore[no-any-return]
            cfg.redis_url,
            **extra,
            codec=self.codec,
            key_prefix=cfg.key_prefix,
            socket_timeout=cfg.socket_timeout,
            connect_timeout=cfg.connect_timeout,
            max_connections=cfg.max_connections,
            pool_timeout=cfg.pool_timeout,
            failures=lambda: self.breaker.failures,
            replies=lambda: self.replies,
            batch_size=cfg.batch_size,
            index=self.index_spec if cfg.enable_embeddings else None,
            vector_type=cfg.vector_type,
            require_search=cfg.require_search,
        )

    # -- exact reads and writes (sync) ----------------------------------------------------

    def read(self, key: str, check: str | bytes, counters: Counters) -> Any:
        """The stored value, or MISSING (on a miss, a failure or a failed check)."""
        breaker = self.breaker
        if breaker.is_open and not breaker.allow():
            return MISSING
        since = self.replies
        try:
            stored = self.backend.get(key)
        except Exception as exc:
            return self._read_failed(key, exc, counters, since)
        self.replies += 1
        if stored is not None and stored.check == check and not breaker.is_open:
            return stored.value  # the hit path: one comparison, no further calls
        return self._verified(key, check, stored, counters)

    def _verified(
        self, key: str, check: str | bytes, stored: Stored | None, counters: Counters
    ) -> Any:
        """What a successful read means: a value only if it proves it is this call's."""
        if self.breaker.is_open:
            self._succeeded()
        if stored is None:
            return MISSING
        if stored.check != check:
            self._corrupt(key, "check digest mismatch (hash collision or foreign entry)", counters)
            return MISSING
        return stored.value

    def _read_failed(
        self, key: str, exc: Exception, counters: Counters, since: int | None = None
    ) -> Any:
        if isinstance(exc, CodecError):  # the server answered; the entry is bad
            self._succeeded()
            self._corrupt(key, exc, counters)
        else:
            self._failed("read", exc, counters, since)
        return MISSING

    def read_many(self, keys: list[tuple[str, str | bytes]], counters: Counters) -> list[Any]:
        """`read` for several (key, check) pairs in one round trip; MISSING where absent."""
        if not keys or (self.breaker.is_open and not self.breaker.allow()):
            return [MISSING] * len(keys)
        since = self.replies
        try:
            replies = self.backend.get_many([k for k, _ in keys])
        except Exception as exc:
            self._failed("read", exc, counters, since)
            return [MISSING] * len(keys)
        self.replies += 1
        return self._verified_many(keys, replies, counters)

    async def aread_many(
        self, keys: list[tuple[str, str | bytes]], counters: Counters
    ) -> list[Any]:
        if not keys or (self.breaker.is_open and not self.breaker.allow()):
            return [MISSING] * len(keys)
        since = self.replies
        try:
            replies = await self.backend.aget_many([k for k, _ in keys])
        except Exception as exc:
            self._failed("read", exc, counters, since)
            return [MISSING] * len(keys)
        self.replies += 1
        return self._verified_many(keys, replies, counters)

    def _verified_many(
        self,
        keys: list[tuple[str, str | bytes]],
        replies: list[Stored | CodecError | None],
        counters: Counters,
    ) -> list[Any]:
        out = []
        for (key, check), reply in zip(keys, replies, strict=True):
            if isinstance(reply, CodecError):
                out.append(self._read_failed(key, reply, counters))
            else:
                out.append(self._verified(key, check, reply, counters))
        return out

    def write_many(self, entries: list[Entry], ttl_ms: int, counters: Counters) -> None:
        """Store several entries in one round trip (never raises)."""
        if entries:
            self._guarded("write", lambda: self.backend.set_many(entries, ttl_ms), 0, counters)

    async def awrite_many(self, entries: list[Entry], ttl_ms: int, counters: Counters) -> None:
        if entries:
            await self._aguarded(
                "write", lambda: self.backend.aset_many(entries, ttl_ms), 0, counters
            )

    def write(self, entry: Entry, ttl_ms: int, counters: Counters) -> bool:
        """Store an entry; True when the backend acknowledged it (never raises)."""
        if not self.breaker.allow():
            return False
        since = self.replies
        try:
            self.backend.set(entry, ttl_ms)
        except Exception as exc:
            return self._write_failed(entry, exc, counters, since)
        self._succeeded()
        return True

    def _write_failed(
        self, entry: Entry, exc: Exception, counters: Counters, since: int | None = None
    ) -> bool:
        if isinstance(exc, CodecError):
            self._uncacheable(entry, exc, counters)
        else:
            self._failed("write", exc, counters, since)
        return False

    def _uncacheable(self, entry: Entry, exc: CodecError, counters: Counters) -> None:
        self.uncacheable(entry.fn_name, str(exc), counters)

    def uncacheable(self, fn_name: str, reason: str, counters: Counters) -> None:
        """Count and log (once per function) a result returned without being stored."""
        self._count(counters, "uncacheable")
        self.log_once(
            f"uncacheable:{fn_name}",
            logging.WARNING,
            "result of %s not stored: %s (returned uncached)",
            fn_name,
            reason,
        )

    def delete(self, key: str) -> bool:
        return self._guarded("delete", lambda: self.backend.delete(key), False)

    def clear(self, tenant: str, fn: str | None = None) -> int:
        return self._guarded("clear", lambda: self.backend.clear(tenant, fn), 0)

    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None:
        return self._guarded("count", lambda: self.backend.count(tenant, fn), None)

    def knn(self, query: VectorQuery, counters: Counters) -> list[Neighbour]:
        return self._guarded("search", lambda: self.backend.knn(query), [], counters)

    def raise_min_similarity(self, key: str, similarity: float, counters: Counters) -> bool:
        """Feedback on a wrong hit: the entry needs more than `similarity` from now on."""
        bumped = similarity + MIN_SIMILARITY_MARGIN
        return self._guarded(
            "feedback", lambda: self.backend.raise_min_similarity(key, bumped), False, counters
        )

    async def araise_min_similarity(self, key: str, similarity: float, counters: Counters) -> bool:
        bumped = similarity + MIN_SIMILARITY_MARGIN
        return await self._aguarded(
            "feedback", lambda: self.backend.araise_min_similarity(key, bumped), False, counters
        )

    # -- async twins ------------------------------------------------------------------------

    async def aread(self, key: str, check: str | bytes, counters: Counters) -> Any:
        if self.breaker.is_open and not self.breaker.allow():
            return MISSING
        since = self.replies
        try:
            stored = await self.backend.aget(key)
        except Exception as exc:
            return self._read_failed(key, exc, counters, since)
        self.replies += 1
        return self._verified(key, check, stored, counters)

    async def awrite(self, entry: Entry, ttl_ms: int, counters: Counters) -> bool:
        if not self.breaker.allow():
            return False
        since = self.replies
        try:
            await self.backend.aset(entry, ttl_ms)
        except Exception as exc:
            return self._write_failed(entry, exc, counters, since)
        self._succeeded()
        return True

    async def adelete(self, key: str) -> bool:
        return await self._aguarded("delete", lambda: self.backend.adelete(key), False)

    async def aknn(self, query: VectorQuery, counters: Counters) -> list[Neighbour]:
        return await self._aguarded("search", lambda: self.backend.aknn(query), [], counters)

    # -- lifecycle ---------------------------------------------------------------------------

    def _fork_lock(self) -> threading.Lock:
        return self._embedder_lock  # see _forksafe

    def _after_fork_in_child(self) -> None:
        self._embedder_lock = threading.Lock()

    def close(self) -> None:
        self.stats.close()
        self.backend.close()

    async def aclose(self) -> None:
        """Close this event loop's async connections (the sync pool stays usable)."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()
