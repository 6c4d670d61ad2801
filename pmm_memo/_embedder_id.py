"""Which vector space an embedding belongs to: embedder name, model and dimensions.

Vectors are comparable only within one space. Every entry records its embedder's label
(`offline/hash-v2/1536`), lookups filter on it, and on Redis each space gets its own
RediSearch index (`<CACHE_INDEX_NAME>:<slug>`, holding only that space's entries through
the index FILTER on the `emb` digest), so two embedders, or one embedder at two
dimensions, coexist on one server without mixing or conflicting.

The model part of an embedder without a `model` attribute is its class's qualified
name, so two custom embedders that both forgot to set `name` are still two spaces.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_EMBEDDER_KEY = b"pmm_memo/embedder/v1"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class EmbedderId:
    name: str
    model: str
    dim: int

    @property
    def label(self) -> str:
        """Readable, stored with every entry: `name/model/dim`."""
        return f"{self.name}/{self.model}/{self.dim}"

    @property
    def tag(self) -> str:
        return embedder_tag(self.label)

    @property
    def slug(self) -> str:
        """Index-name suffix: readable, and unique through the digest."""
        name = _UNSAFE.sub("_", self.name)[:32] or "embedder"
        return f"{name}-{self.dim}-{self.tag[:8]}"


@lru_cache(maxsize=64)
def embedder_tag(label: str) -> str:
    """24-hex digest of an embedder label (the `emb` field the index FILTER matches)."""
    data = label.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=12, key=_EMBEDDER_KEY).hexdigest()


def identity_of(embedder: Any) -> EmbedderId:
    """The space of an embedder's vectors (a caching wrapper is its inner embedder's)."""
    inner = getattr(embedder, "inner", None)
    if inner is not None:
        return identity_of(inner)
    cls = type(embedder)
    model = getattr(embedder, "model", None) or f"{cls.__module__}.{cls.__qualname__}"
    return EmbedderId(str(embedder.name), str(model), int(embedder.dim))
