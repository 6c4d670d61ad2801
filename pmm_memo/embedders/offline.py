"""A deterministic, offline, lexical embedder: the default when no OpenAI key is set.

Honest scope: it measures *wording* overlap, not meaning. "How do I reset my password?"
and "how do i reset my password" score ~1.0; a typo, a dropped word or swapped word order
still score high; a paraphrase with different words scores low, and two sentences that
share many words but differ in one crucial word ("not") can score high. Use OpenAI or
the local MiniLM model for semantic similarity.

Method: feature hashing (the "hashing trick"). Features are lower-cased words (minus a
short stop-word list, at reduced weight) and character trigrams of each word (which make
typos and inflections overlap). Each feature is hashed with XXH3 into one of `dim`
buckets with a hash-derived sign; counts are dampened (sqrt) and the vector normalised.
No model, no download, no randomness: the same text gives the same vector everywhere.
"""

from __future__ import annotations

import re

import numpy as np
import xxhash

from ._base import BaseEmbedder

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an the of to in on at for by with and or is are was were be been it its this that "
    "do does did i you he she we they my your our their me us what how why when where "
    "which who can could would should will".split()
)
_WORD_WEIGHT = 1.0
_STOP_WEIGHT = 0.25
_TRIGRAM_WEIGHT = 0.4
_SEED = 0x706D6D  # fixed forever: changing it changes every stored offline vector


class OfflineEmbedder(BaseEmbedder):
    name = "offline"

    def __init__(self, dim: int = 1536, batch_size: int = 1000) -> None:
        super().__init__(dim, batch_size)
        self._hash = xxhash.xxh3_64_intdigest

    def _features(self, text: str) -> dict[int, float]:
        feats: dict[int, float] = {}
        h = self._hash
        words = _WORD.findall(text.lower())
        if not words:
            words = [text.strip().lower() or "<empty>"]
        for w in words:
            weight = _STOP_WEIGHT if w in _STOP else _WORD_WEIGHT
            key = h(("w:" + w).encode("utf-8", "surrogatepass"), _SEED)
            feats[key] = feats.get(key, 0.0) + weight
            if w in _STOP:
                continue
            padded = f"<{w}>"
            for i in range(len(padded) - 2):
                key = h(("c:" + padded[i : i + 3]).encode("utf-8", "surrogatepass"), _SEED)
                feats[key] = feats.get(key, 0.0) + _TRIGRAM_WEIGHT
        return feats

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        dim = self.dim
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, text in enumerate(texts):
            for key, count in self._features(text).items():
                rows.append(r)
                cols.append(key % dim)
                # Top hash bit is the sign: collisions cancel on average instead of adding.
                vals.append(count**0.5 * (1.0 if key >> 63 else -1.0))
        flat = np.asarray(rows, dtype=np.int64) * dim + np.asarray(cols, dtype=np.int64)
        out = np.bincount(
            flat, weights=np.asarray(vals, dtype=np.float64), minlength=len(texts) * dim
        ).reshape(len(texts), dim)
        # Features can cancel (two hashed into one bucket with opposite signs): give such
        # a text one bucket of its own instead of an all-zero vector.
        for r in np.flatnonzero(~out.any(axis=1)).tolist():
            bucket = self._hash(texts[r].encode("utf-8", "surrogatepass"), _SEED + 1) % dim
            out[r, bucket] = 1.0
        return out.astype(np.float32)

    async def _aembed_batch(self, texts: list[str]) -> object:
        # Microseconds per text: a thread hop would cost more than it saves.
        return self._embed_batch(texts)
