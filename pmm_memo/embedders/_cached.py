"""Embeddings of identical texts, cached in the `pmm_embeddings` tenant.

Only remote embedders are wrapped (an API call costs money and ~100 ms; the offline
embedder is faster than a cache read). The key covers the text and the vector space
(embedder name, model and dimensions). A batch reads all its keys at once and asks the
embedder only for the texts it lacks. Entries keep the seed's layout (`text` +
`embedding`), so they can be searched like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._digests import qhash
from .._embedder_id import identity_of
from .._stats import Counters
from ..backends._base import Entry
from ._base import Embedder, check_texts

if TYPE_CHECKING:
    from .._cache import Cache

EMBEDDINGS_TENANT = "pmm_embeddings"


class CachedEmbedder:
    """An Embedder that remembers vectors of texts it has seen."""

    remote = False

    def __init__(self, inner: Embedder, cache: Cache, tenant: str = EMBEDDINGS_TENANT) -> None:
        self.inner = inner
        self.cache = cache
        self.tenant = tenant
        self.name = f"{inner.name}+cache"
        self.dim = inner.dim
        self.counters = Counters()
        # The vector space, as entries and indexes name it (`_embedder_id`): name, model
        # (or class) and dimensions. Keyed by model alone, two custom embedders both
        # named "base" without a `model` were served each other's vectors.
        space = identity_of(inner).label
        self._material_head = f"pmm_embed|{space}|".encode("utf-8", "surrogatepass")
        self._fn_name = f"embeddings:{space}"
        self._fn = cache.digests.fn(self._fn_name)
        cache.stats.register(tenant, self.counters)

    def _keys(self, texts: list[str]) -> list[tuple[str, str | bytes]]:
        out = []
        for t in texts:
            material = self._material_head + t.encode("utf-8", "surrogatepass")
            out.append(
                (
                    f"{self.cache.key_prefix}{self.tenant}:{qhash(material, self.cache.hash_seed)}",
                    self.cache.check_of(material),
                )
            )
        return out

    def _entry(self, key: str, check: str | bytes, text: str, vector: np.ndarray) -> Entry:
        return Entry(
            key=key,
            value=vector,
            check=check,
            tenant=self.tenant,
            user="",
            fn=self._fn,
            fn_name=self._fn_name,
            created_at=time.time(),
            text=text[: self.cache.config.max_text_length],
            scope=self._fn,
            embedding=vector,
        )

    def _valid(self, value: object) -> bool:
        return isinstance(value, np.ndarray) and value.shape == (self.dim,)

    def _missing(self, found: list[Any]) -> list[int]:
        missing = [i for i, v in enumerate(found) if not self._valid(v)]
        self.counters.hits += len(found) - len(missing)
        self.counters.misses += len(missing)
        return missing

    def _fill(
        self,
        found: list[Any],
        missing: list[int],
        fresh: np.ndarray,
        items: list[str],
        keys: list[tuple[str, str | bytes]],
    ) -> list[Entry]:
        entries = []
        for i, vec in zip(missing, fresh, strict=True):
            found[i] = vec
            entries.append(self._entry(*keys[i], items[i], vec))
        return entries

    def _stack(self, found: list[Any]) -> np.ndarray:
        if not found:
            return np.empty((0, self.dim), np.float32)
        return np.vstack(found).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_texts(texts, self.name)
        keys = self._keys(items)
        found = self.cache.read_many(keys, self.counters)  # one round trip for the batch
        missing = self._missing(found)
        if missing:
            fresh = self.inner.embed([items[i] for i in missing])
            entries = self._fill(found, missing, fresh, items, keys)
            self.cache.write_many(entries, self.cache.config.default_ttl * 1000, self.counters)
        return self._stack(found)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_texts(texts, self.name)
        keys = self._keys(items)
        found = await self.cache.aread_many(keys, self.counters)
        missing = self._missing(found)
        if missing:
            fresh = await self.inner.aembed([items[i] for i in missing])
            entries = self._fill(found, missing, fresh, items, keys)
            await self.cache.awrite_many(
                entries, self.cache.config.default_ttl * 1000, self.counters
            )
        return self._stack(found)
