"""`CacheManager`: the seed project's cache API, on the same backends as the decorators.

    manager = CacheManager(CacheConfig.from_env())
    key = manager.put_cache("pmm_bot", "user123", "greeting", "Hello!", embedding=vec)
    manager.get_cache("pmm_bot", key)["text"]          # "Hello!"
    manager.knn_search("pmm_bot", vec, k=5, user="user123")
    manager.health_check(); manager.get_cache_stats("pmm_bot")
    manager.clear_tenant_cache("pmm_bot")             # -> number of entries removed

Unlike the decorators, manager calls are explicit operations: a backend failure raises
(the caller asked for that operation), except `health_check`, which reports it. An index
problem (an index of that name with another schema, no search module) is handled as the
decorators handle it: logged once at ERROR, entries stored without their vector, and
searches find nothing until it is fixed; `health_check()["index_error"]` says what it is.
With CACHE_REQUIRE_SEARCH=true the manager checks the index at construction and raises.

Vectors passed to `put_cache`/`knn_search` are taken to come from the configured
embedder (CACHE_EMBEDDER, its dimensions): they are recorded and searched under its
label, in its own index, never compared with another embedder's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from . import _validate
from ._cache import Cache
from ._config import CacheConfig
from ._digests import qhash
from ._errors import (
    ConfigError,
    EmbeddingError,
    IndexSchemaError,
    PmmMemoError,
    SearchUnavailableError,
)
from .backends._base import Entry, VectorQuery


def _check_vectors(raw: object, n: int, dim: int, name: str) -> Any:
    from .embedders._base import check_vectors  # numpy only when vectors are used

    return check_vectors(raw, n, dim, name)


_HEX32 = re.compile(r"[0-9a-f]{32}")
_MANAGER_FN = "pmm_memo.CacheManager.put_cache"


class CacheManager:
    """Seed-compatible operations over a `Cache` (one is built from `config` if not given)."""

    def __init__(self, config: CacheConfig | None = None, *, cache: Cache | None = None) -> None:
        self.cache = cache if cache is not None else Cache(config)
        self.config = self.cache.config
        self._fn = self.cache.digests.fn(_MANAGER_FN)
        if self.config.require_search and self.config.enable_embeddings:
            # Start-up is where a missing search module or a conflicting index should
            # stop a deployment that depends on them.
            self._ensure_index()

    # -- keys ------------------------------------------------------------------------------

    def full_key(self, tenant: str, key: str) -> str:
        """`cache:<tenant>:<qhash>`; `key` may be that full key, a 32-hex qhash, or any
        string (hashed with XXH3-128)."""
        _validate.tenant(tenant)
        if not isinstance(key, str):
            raise ConfigError(f"key must be a str, got {type(key).__name__}: {key!r}")
        head = f"{self.config.key_prefix}{tenant}:"
        if key.startswith(head) and _HEX32.fullmatch(key[len(head) :]):
            return key
        if _HEX32.fullmatch(key):
            return head + key
        return head + qhash(
            b"pmm_manager|" + key.encode("utf-8", "surrogatepass"), self.cache.hash_seed
        )

    # -- the seed's operations ---------------------------------------------------------------

    def put_cache(
        self,
        tenant: str,
        user: str | None,
        key: str,
        text: str,
        embedding: Any = None,
        ttl: float | None = None,
    ) -> str:
        """Store `text` (the cached content) under the tenant; returns the full key."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a str, got {type(text).__name__}")
        full = self.full_key(tenant, key)
        vector = None
        if embedding is not None:
            dim = self.cache.dimensions
            vector = _check_vectors([embedding], 1, dim, "put_cache(embedding=...)")[0]
        ttl_ms = _validate.ttl(ttl) or self.config.default_ttl * 1000
        entry = Entry(
            key=full,
            value=text,
            check=self.cache.check_of(full.encode()),
            tenant=tenant,
            user="" if user is None else str(user),
            fn=self._fn,
            fn_name=_MANAGER_FN,
            created_at=time.time(),
            text=text[: self.config.max_text_length],
            scope=self._fn,
            embedding=vector,
            embedder=None if vector is None else self.cache.embedder_id.label,
        )
        # An index problem makes the backend store the entry without its vector (logged
        # once), exactly as for decorated functions.
        self.cache.backend.set(entry, ttl_ms)
        return full

    def get_cache(self, tenant: str, key: str) -> dict[str, Any] | None:
        """The entry as a dict (text, value, user, created_at, embedding, ttl_ms), or None."""
        full = self.full_key(tenant, key)
        entry = self.cache.backend.fetch(full)
        if entry is None or entry.tenant != tenant:
            return None
        ttl_of = getattr(self.cache.backend, "ttl_ms", None)
        return {
            "key": full,
            "tenant": entry.tenant,
            "user": entry.user,
            "text": entry.text,
            "value": entry.value,
            "created_at": entry.created_at,
            "function": entry.fn_name,
            "embedding": entry.embedding,
            "embedder": entry.embedder,
            "ttl_ms": ttl_of(full) if ttl_of else None,
        }

    def knn_search(
        self, tenant: str, query_vector: Any, k: int = 10, user: str | None = None
    ) -> list[dict[str, Any]]:
        """Nearest entries of the tenant (only `user`'s when given), best first, each with
        its `similarity` (cosine, 1.0 = same direction)."""
        _validate.tenant(tenant)
        _validate.positive_int("k", k)
        vector = _check_vectors(
            [query_vector], 1, self.cache.dimensions, "knn_search(query_vector=...)"
        )[0]
        label = self.cache.embedder_id.label
        query = VectorQuery(
            tenant=tenant,
            vector=vector,
            k=k,
            user=None if user is None else str(user),
            embedder=label,
        )
        try:
            found = self.cache.backend.knn(query)
        except (IndexSchemaError, SearchUnavailableError) as exc:
            self.cache.config_problem(exc)  # the decorators' policy: logged once, no hits
            return []
        out = []
        for n in found:
            if (
                n.tenant != tenant
                or (query.user is not None and n.user != query.user)
                or n.embedder != label
            ):
                continue  # never trust a filter alone
            out.append(
                {
                    "key": n.key,
                    "text": n.text,
                    "user": n.user,
                    "similarity": n.similarity,
                    "min_similarity": n.min_similarity,
                    "created_at": n.created_at,
                    "value": None if n.corrupt else n.value,
                }
            )
        return out

    def report_wrong_hit(self, tenant: str, key: str, similarity: float) -> bool:
        """A hit on this entry at `similarity` (as `knn_search` reported it) was wrong: from
        now on the entry needs a higher similarity to be a semantic hit, so that pair never
        hits again (the decorators honour it; `knn_search` results carry it as
        `min_similarity`). Stored with the entry. False when the entry does not exist."""
        full = self.full_key(tenant, key)
        if isinstance(similarity, bool) or not isinstance(similarity, int | float):
            raise TypeError(f"similarity must be a number, not {type(similarity).__name__}")
        if not -1.0 <= float(similarity) <= 1.0:
            raise ValueError(f"similarity must be a cosine similarity in [-1, 1], got {similarity}")
        entry = self.cache.backend.fetch(full)
        if entry is None or entry.tenant != tenant:
            return False
        from ._cache import MIN_SIMILARITY_MARGIN

        return self.cache.backend.raise_min_similarity(
            full, float(similarity) + MIN_SIMILARITY_MARGIN
        )

    def search_text(
        self, tenant: str, text: str, k: int = 10, user: str | None = None
    ) -> list[dict[str, Any]]:
        """`knn_search` for a text, embedded with the configured embedder. An embedder's
        own failure (the API refusing the key, a timeout) is an EmbeddingError naming
        the embedder, as its bad vectors are: the CLI reports it instead of a traceback."""
        embedder = self.cache.embedder
        try:
            vector = embedder.embed([text])[0]
        except PmmMemoError:
            raise
        except Exception as exc:
            raise EmbeddingError(
                f"embedder {embedder.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return self.knn_search(tenant, vector, k=k, user=user)

    def clear_tenant_cache(self, tenant: str, progress: Callable[[int], None] | None = None) -> int:
        """Remove every entry of `tenant` (and only of it); returns how many."""
        _validate.tenant(tenant)
        return self.cache.backend.clear(tenant, progress=progress)

    def count_entries(self, tenant: str) -> int:
        """How many live entries the tenant has (a SCAN on Redis)."""
        _validate.tenant(tenant)
        return self.cache.backend.count(tenant) or 0

    def health_check(self) -> dict[str, Any]:
        """Never raises: reports what works (`redis_connected`, `search_available`, ...)."""
        backend = self.cache.backend
        report: dict[str, Any] = {
            "backend": backend.name,
            "url": self.config.masked_redis_url,
            "redis_connected": False,
            "search_available": False,
            "index_exists": False,
            "index_docs": None,
            "latency_ms": None,
            "embedder": self.config.embedder,
            "breaker_open": self.cache.breaker.is_open,
            "healthy": False,
        }
        try:
            report["latency_ms"] = round(backend.ping(), 3)
            report["redis_connected"] = backend.name == "redis"
            report["healthy"] = True
        except Exception as exc:
            report["error"] = f"{type(exc).__name__}: {exc}"
            if not hasattr(backend, "nodes_health"):
                return report
        nodes_health = getattr(backend, "nodes_health", None)
        if nodes_health is not None:
            # Redis Cluster: every primary, indexes left behind by topology changes, and
            # one verdict (healthy only when every primary answers).
            try:
                report.update(nodes_health())
                report["redis_connected"] = report["nodes_ok"] > 0
                report["healthy"] = report["nodes_ok"] == len(report["nodes"])
            except Exception as exc:
                report["healthy"] = False
                report["error"] = f"{type(exc).__name__}: {exc}"
                return report
        if backend.name == "memory":
            report["search_available"] = True  # numpy KNN, always
            report["index_exists"] = True
            report["index_docs"] = backend.count()
        else:
            try:
                report["search_available"] = bool(backend.search_available())  # type: ignore[attr-defined]
                info = backend.index_info()  # type: ignore[attr-defined]
                if info is not None:
                    report["index_exists"] = True
                    report["index_docs"] = info["num_docs"]
                problem = getattr(backend, "index_error", None)
                if problem is not None:
                    report["index_error"] = str(problem)
                if nodes_health is None:
                    # An index of the previous schema still indexing every entry (a
                    # cluster lists these per node, above).
                    report["leftover_indexes"] = backend.leftover_indexes()  # type: ignore[attr-defined]
            except Exception as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
        try:
            from .embedders import choose_embedder

            choice, why = choose_embedder(self.config)
            # A health check embeds nothing: report the choice without building (and
            # announcing) an embedder, unless one is already in use.
            built = self.cache._embedder_ready or self.cache._embedder is not None
            name = self.cache.embedder.name if built else choice
            report["embedder"] = name
            report["embedder_id"] = self.cache.embedder_id.label  # name/model/dimensions
            # Why this embedder: CACHE_EMBEDDER, auto's reasoning, or one given to Cache.
            report["embedder_choice"] = why if name.split("+")[0] == choice else "given to Cache"
        except Exception as exc:
            report["embedder_error"] = f"{type(exc).__name__}: {exc}"
        return report

    def get_cache_stats(self, tenant: str | None = None) -> dict[str, Any]:
        """Entries per tenant and hit/miss/semantic/error counters (across processes on
        Redis), plus memory used."""
        backend = self.cache.backend
        if tenant is not None:
            _validate.tenant(tenant)
        if backend.name == "redis":
            entries = backend.tenants()  # type: ignore[attr-defined]
            counters = self.cache.stats.shared(tenant) or {}
            memory = backend.memory_used()  # type: ignore[attr-defined]
        else:
            entries = {}
            for e in backend.entries():  # type: ignore[attr-defined]
                entries[e.tenant] = entries.get(e.tenant, 0) + 1
            counters = self.cache.stats.local(tenant)
            memory = None
        tenants = sorted(set(entries) | set(counters)) if tenant is None else [tenant]
        rows = {}
        for t in tenants:
            row: dict[str, Any] = {"entries": entries.get(t, 0)}
            row.update(
                counters.get(
                    t,
                    {
                        f: 0
                        for f in (
                            "hits",
                            "misses",
                            "semantic_hits",
                            "errors",
                            "corrupt",
                            "uncacheable",
                        )
                    },
                )
            )
            rows[t] = row
        return {"backend": backend.name, "tenants": rows, "memory_used_bytes": memory}

    # -- helpers ---------------------------------------------------------------------------

    def _ensure_index(self) -> None:
        ensure = getattr(self.cache.backend, "ensure_index", None)
        if ensure is not None:
            ensure()

    def close(self) -> None:
        self.cache.close()
