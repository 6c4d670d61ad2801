"""The embedder interface and the checks every vector passes before it is stored.

An embedder maps texts to an (n, dim) float32 array. `BaseEmbedder` batches by
CACHE_BATCH_SIZE and validates: wrong shape, NaN/inf or an all-zero vector raise
EmbeddingError naming the embedder and the expected dimension. Vectors are
L2-normalised here, once, so cosine similarity is a dot product everywhere.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .._errors import EmbeddingError


class Embedder(Protocol):
    name: str
    dim: int
    remote: bool  # True when a call costs money or a network trip (worth caching)

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...
    async def aembed(self, texts: Sequence[str]) -> np.ndarray: ...


def check_vectors(raw: object, n: int, dim: int, name: str) -> np.ndarray:
    """Validate and L2-normalise an embedder's output."""
    try:
        arr = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(
            f"embedder {name!r} returned something that is not numbers: {exc}"
        ) from None
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.shape != (n, dim):
        raise EmbeddingError(
            f"embedder {name!r} returned shape {arr.shape}, expected ({n}, {dim}): "
            f"dimension {dim} is configured (CACHE_EMBEDDING_DIMENSIONS or the model's own)"
        )
    # One pass: a row's norm is finite only if every value in it is (NaN and inf spread).
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr, dtype=np.float64))[:, None]
    if not np.isfinite(norms).all():
        raise EmbeddingError(
            f"embedder {name!r} returned NaN or infinite values "
            f"(expected {dim} finite floats per text)"
        )
    if (norms == 0).any():
        raise EmbeddingError(f"embedder {name!r} returned an all-zero vector")
    out: np.ndarray = (arr / norms).astype(np.float32, copy=False)
    return out


def check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise EmbeddingError(f"embedder {name!r} takes a sequence of texts, not one str")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise EmbeddingError(f"embedder {name!r}: text {i} is {type(t).__name__}, not str")
    return out


class BaseEmbedder(abc.ABC):
    """Batching and validation around `_embed_batch` (and its async twin)."""

    name = "base"
    remote = False

    def __init__(self, dim: int, batch_size: int = 100) -> None:
        self.dim = dim
        self.batch_size = batch_size

    @abc.abstractmethod
    def _embed_batch(self, texts: list[str]) -> object:
        """Vectors for one batch (any array-like of shape (len(texts), dim))."""

    async def _aembed_batch(self, texts: list[str]) -> object:
        # CPU-bound embedders run in a thread so they do not stall the event loop.
        return await asyncio.to_thread(self._embed_batch, texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_texts(texts, self.name)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [
            check_vectors(
                self._embed_batch(items[i : i + self.batch_size]),
                len(items[i : i + self.batch_size]),
                self.dim,
                self.name,
            )
            for i in range(0, len(items), self.batch_size)
        ]
        return parts[0] if len(parts) == 1 else np.vstack(parts)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        items = check_texts(texts, self.name)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = []
        for i in range(0, len(items), self.batch_size):
            batch = items[i : i + self.batch_size]
            parts.append(
                check_vectors(await self._aembed_batch(batch), len(batch), self.dim, self.name)
            )
        return parts[0] if len(parts) == 1 else np.vstack(parts)
