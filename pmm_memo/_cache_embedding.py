"""The semantic half of `Cache`: its embedder, built on first use, and embedding calls
that never raise (a failed embedding is counted and the call falls back to exact caching).

The vectors of the last VECTOR_MEMO texts embedded one at a time are kept: a semantic
hit does not store the query's own text, so a question asked again is looked up, and
embedded, again. Kept, its vector is validated once (when the embedder produced it) and
found by a dict look-up on every later lookup, with no call to a local model, and no
read of a remote embedder's cached vector. Read-only copies: no caller can change a kept
vector. Failures are never kept. A plain dict evicting its oldest insertion, no lock:
each operation is atomic under the GIL, and nothing can be left held across a fork.

A mixin of `Cache` (see `_cache`): exact caching never constructs an embedder, so an
application without OpenAI credentials or the `local` extra pays nothing for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, cast

from ._breaker import CircuitBreaker
from ._cache_failures import CacheFailures
from ._stats import Counters
from .backends._index import IndexSpec, index_name, legacy_index_name

if TYPE_CHECKING:
    import numpy as np

    from ._cache import Cache
    from ._digests import Digests
    from ._embedder_id import EmbedderId
    from .embedders import Embedder


VECTOR_MEMO = 256  # texts per Cache: ~6 KB per 1536-d vector, plus the text
logger = logging.getLogger("pmm_memo")

# Failures that say the embedder cannot answer now, whatever the text: a timeout, a
# refused or dropped connection, the service's own 5xx, a rate limit (openai's and
# httpx's classes, by name: neither is a dependency of exact caching). A refusal of one
# text (400, a context too long) or a bad vector says nothing about the next call.
_DOWN_NAMES = frozenset(
    {
        "APITimeoutError",
        "APIConnectionError",
        "InternalServerError",
        "RateLimitError",
        "TimeoutException",
        "TransportError",
    }
)


_TIMEOUT_NAMES = frozenset({"APITimeoutError", "TimeoutException"})


def _names(exc: BaseException) -> set[str]:
    """The names of `exc`'s classes (SDK exceptions are matched by name)."""
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or bool(_names(exc) & _TIMEOUT_NAMES)


def embedder_down(exc: BaseException) -> bool:
    """Does `exc`, raised by an embedder, say it is unavailable (not that it refused)?"""
    return isinstance(exc, TimeoutError | ConnectionError) or bool(_names(exc) & _DOWN_NAMES)


class CacheEmbedding(CacheFailures):
    """Embedder construction and fail-open embedding calls, for `Cache`."""

    _embedder: Embedder | None
    _embedder_ready: bool
    _embedder_lock: threading.Lock
    _embedder_id: EmbedderId | None
    _vectors: dict[str, np.ndarray]  # see the module docstring
    embed_breaker: CircuitBreaker  # open while the embedder is down (see _embed_failed)
    # Embeddings received so far (evidence that the embedder is up; see _embed_failed).
    # A plain counter, as Cache.replies: a lost increment only weakens one piece of it.
    embeddings: int
    digests: Digests

    @property
    def embedder(self) -> Embedder:
        """The embedder; remote ones (OpenAI) are wrapped so each text is paid for once."""
        if self._embedder is None or not self._embedder_ready:
            with self._embedder_lock:
                if not self._embedder_ready:
                    from .embedders import make_embedder
                    from .embedders._cached import CachedEmbedder

                    inner = self._embedder or make_embedder(self.config)
                    self._embedder = (
                        CachedEmbedder(inner, cast("Cache", self)) if inner.remote else inner
                    )
                    self._embedder_ready = True
        assert self._embedder is not None
        return self._embedder

    def embed(self, text: str, counters: Counters) -> np.ndarray | None:
        """One normalised, read-only vector, or None when embedding failed (counted,
        logged once)."""
        vector = self._vectors.get(text)
        if vector is not None:
            return vector
        vectors = self.embed_many((text,), counters)
        return None if vectors is None else self._keep(text, vectors[0])

    async def aembed(self, text: str, counters: Counters) -> np.ndarray | None:
        vector = self._vectors.get(text)
        if vector is not None:
            return vector
        vectors = await self.aembed_many((text,), counters)
        return None if vectors is None else self._keep(text, vectors[0])

    def _keep(self, text: str, vector: np.ndarray) -> np.ndarray:
        kept = vector.copy()  # the embedder may reuse its array
        kept.flags.writeable = False
        vectors = self._vectors
        vectors[text] = kept
        if len(vectors) > VECTOR_MEMO:
            # Another thread may have evicted it (or changed the dict) first: no matter.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del vectors[next(iter(vectors))]
        return kept

    def embed_many(self, texts: tuple[str, ...], counters: Counters) -> np.ndarray | None:
        """(len(texts), dim) normalised vectors, or None when embedding failed."""
        if not self._may_embed():
            return None
        since = self.embeddings
        try:
            vectors: np.ndarray = self.embedder.embed(list(texts))
        except Exception as exc:
            self._embed_failed(exc, counters, since)
            return None
        self._embedded()
        return vectors

    async def aembed_many(self, texts: tuple[str, ...], counters: Counters) -> np.ndarray | None:
        if not self._may_embed():
            return None
        since = self.embeddings
        try:
            vectors: np.ndarray = await self.embedder.aembed(list(texts))
        except Exception as exc:
            self._embed_failed(exc, counters, since)
            return None
        self._embedded()
        return vectors

    def _may_embed(self) -> bool:
        """Not while the embedder is down (see `_embed_failed`): cheap when it is up."""
        breaker = self.embed_breaker
        return not breaker.is_open or breaker.allow()

    def _embedded(self) -> None:
        """A successful embedding: closes the embedder's breaker if it was open."""
        self.embeddings += 1
        if self.embed_breaker.is_open and self.embed_breaker.record_success():
            self._logged.difference_update([t for t in self._logged if t.startswith("embed")])
            logger.info("embedder %r answers again; semantic lookups resume", self._label())

    def _embed_failed(self, exc: BaseException, counters: Counters, since: int) -> None:
        """Count and log a failed embedding. One that says the embedder is down
        (`embedder_down`) opens its breaker: for CACHE_BREAKER_INTERVAL seconds calls
        skip embedding (exact caching only) instead of each waiting the embedder's
        timeout and retries (30 s x 3 for OpenAI's defaults); then one call tries again.
        `since`: `self.embeddings` when the call started. A timeout while other calls
        were embedded says this request was slow, not that the embedder is down (as a
        Redis timeout under load, see `_cache_failures`): it opens nothing."""
        self._count(counters, "errors")
        slow = self.embeddings != since and _is_timeout(exc)
        if not slow and embedder_down(exc) and self.embed_breaker.record_failure():
            logger.warning(
                "embedder %r unavailable (%s: %s); semantic lookups fall back to exact "
                "caching, next try in %.1fs",
                self._label(),
                type(exc).__name__,
                exc,
                self.embed_breaker.interval,
            )
            return
        self.log_once(
            f"embed:{type(exc).__name__}",
            logging.WARNING,
            "embedding failed (%s: %s); calls fall back to exact caching",
            type(exc).__name__,
            exc,
        )

    def _label(self) -> str:
        return self._embedder.name if self._embedder is not None else "?"

    @property
    def dimensions(self) -> int:
        """Vector size of the index: the embedder's (a local model fixes its own)."""
        return self.embedder.dim

    @property
    def embedder_id(self) -> EmbedderId:
        """The vector space of this cache's embeddings (recorded with every entry)."""
        ident = self._embedder_id
        if ident is None:
            from ._embedder_id import identity_of

            ident = self._embedder_id = identity_of(self.embedder)
        return ident

    def index_spec(self) -> IndexSpec:
        """This cache's embedder's index: `<CACHE_INDEX_NAME>:<embedder slug>:v2` (with
        the key prefix's part before the slug for a CACHE_KEY_PREFIX of its own)."""
        cfg = self.config
        ident = self.embedder_id
        return IndexSpec(
            name=index_name(cfg.index_name, ident.slug, cfg.key_prefix),
            embedder_tag=ident.tag,
            part_key=self.digests.part_key,
            legacy_name=legacy_index_name(cfg.index_name, ident.slug),
            prefix=cfg.key_prefix,
            dim=self.dimensions,
            algorithm=cfg.vector_algorithm,
            vector_type=cfg.vector_type,
            m=cfg.hnsw_m,
            ef_construction=cfg.hnsw_ef_construction,
            ef_runtime=cfg.hnsw_ef_runtime,
        )
