"""Embedders for benchmarks/quality.py: which model, and an on-disk vector cache.

`DiskCachedEmbedder` keeps every vector in DIR/<embedder name>-<dim>/<blake2b of the
text>.npy, so a second run of the quality script with the same model embeds only new
texts (iterating on rules takes a minute instead of twenty). It is for measuring
quality, never for timing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pmm_memo.embedders import Embedder, OfflineEmbedder


def make_embedder(name: str) -> Embedder:
    if name == "local":
        from pmm_memo.embedders.local import LocalEmbedder

        return LocalEmbedder()
    return OfflineEmbedder(1536, batch_size=2000)


class DiskCachedEmbedder:
    """An embedder whose vectors are kept in DIR/<name>-<dim>/<blake2b of text>.npy."""

    def __init__(self, inner: Embedder, root: Path) -> None:
        self.inner, self.name, self.dim, self.remote = inner, inner.name, inner.dim, False
        self.dir = root / f"{inner.name}-{inner.dim}"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, text: str) -> Path:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
        return self.dir / f"{digest.hexdigest()}.npy"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            path = self._path(t)
            if path.exists():
                out[i] = np.load(path)
            else:
                missing.setdefault(t, []).append(i)
        if missing:
            vecs = self.inner.embed(list(missing))
            for (t, rows), v in zip(missing.items(), vecs, strict=True):
                out[rows] = v
                np.save(self._path(t), v)
        return out

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)


def embed_unique(embedder: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    index: dict[str, int] = {}
    unique: list[str] = []
    for t in texts:
        if t not in index:
            index[t] = len(unique)
            unique.append(t)
    return embedder.embed(unique), index
