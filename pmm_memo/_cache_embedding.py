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


class CacheEmbedding(CacheFailures):
    """Embedder construction and fail-open embedding calls, for `Cache`."""

    _embedder: Embedder | None
    _embedder_ready: bool
    _embedder_lock: threading.Lock
    _embedder_id: EmbedderId | None
    _vectors: dict[str, np.ndarray]  # see the module docstring
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
        try:
            vector = self.embedder.embed([text])[0]
        except Exception as exc:
            self._embed_failed(exc, counters)
            return None
        return self._keep(text, vector)

    async def aembed(self, text: str, counters: Counters) -> np.ndarray | None:
        vector = self._vectors.get(text)
        if vector is not None:
            return vector
        try:
            vector = (await self.embedder.aembed([text]))[0]
        except Exception as exc:
            self._embed_failed(exc, counters)
            return None
        return self._keep(text, vector)

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
        try:
            vectors: np.ndarray = self.embedder.embed(list(texts))
            return vectors
        except Exception as exc:
            self._embed_failed(exc, counters)
            return None

    async def aembed_many(self, texts: tuple[str, ...], counters: Counters) -> np.ndarray | None:
        try:
            vectors: np.ndarray = await self.embedder.aembed(list(texts))
            return vectors
        except Exception as exc:
            self._embed_failed(exc, counters)
            return None

    def _embed_failed(self, exc: BaseException, counters: Counters) -> None:
        self._count(counters, "errors")
        self.log_once(
            f"embed:{type(exc).__name__}",
            logging.WARNING,
            "embedding failed (%s: %s); calls fall back to exact caching",
            type(exc).__name__,
            exc,
        )

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
        """This cache's embedder's index: `<CACHE_INDEX_NAME>:<embedder slug>:v2`."""
        cfg = self.config
        ident = self.embedder_id
        return IndexSpec(
            name=index_name(cfg.index_name, ident.slug),
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
