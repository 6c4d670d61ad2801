"""The vectors a Cache keeps of recently embedded texts (pmm_memo._cache_embedding): a
question asked again is not embedded again, failures are not kept, memory is bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from pmm_memo import Cache, CacheConfig, semantic_lookup
from pmm_memo._cache_embedding import VECTOR_MEMO
from pmm_memo._text_features import features
from pmm_memo.embedders import BaseEmbedder
from pmm_memo.embedders.offline import OfflineEmbedder
from tests.conftest import run

Q = "How do I reset my password?"
NEAR = "how do i reset my password"  # offline similarity 1.0, another text


class Counting(BaseEmbedder):
    """The offline embedder, counting the texts it is asked for; `fail` makes it raise."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__(64)
        self.inner = OfflineEmbedder(64)
        self.asked: list[str] = []
        self.fail = False

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.asked += texts
        if self.fail:
            raise RuntimeError("embedder down")
        return self.inner.embed(texts)

    async def _aembed_batch(self, texts: list[str]) -> object:
        return self._embed_batch(texts)


@pytest.fixture
def counted() -> tuple[Cache, Counting]:
    embedder = Counting()
    return Cache(CacheConfig(), embedder=embedder), embedder


def _ask(cache: Cache, calls: list[str]) -> Any:
    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt.upper()

    return ask


def test_a_question_asked_again_is_not_embedded_again(counted: tuple[Cache, Counting]) -> None:
    cache, embedder = counted
    calls: list[str] = []
    ask = _ask(cache, calls)
    assert ask(Q) == Q.upper()
    assert [ask(NEAR) for _ in range(3)] == [Q.upper()] * 3
    assert ask.cache_info().semantic_hits == 3 and calls == [Q]
    assert embedder.asked == [Q, NEAR]  # each text once, though NEAR was looked up 3 times
    kept = cache.embed(NEAR, cache.counters)
    assert kept is not None and not kept.flags.writeable  # no caller can change it
    with pytest.raises(ValueError):
        kept[0] = 0.0


def test_async_lookups_keep_vectors_too(counted: tuple[Cache, Counting]) -> None:
    cache, embedder = counted
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        await asyncio.sleep(0)
        return prompt.upper()

    async def main() -> list[str]:
        return [await ask(Q), await ask(NEAR), await ask(NEAR)]

    assert run(main()) == [Q.upper()] * 3
    assert embedder.asked == [Q, NEAR]


def test_a_failed_embedding_is_not_kept(counted: tuple[Cache, Counting]) -> None:
    cache, embedder = counted
    embedder.fail = True
    assert cache.embed(Q, cache.counters) is None
    embedder.fail = False
    vector = cache.embed(Q, cache.counters)
    assert vector is not None and vector.shape == (64,)
    assert embedder.asked == [Q, Q]  # asked again after the failure


def test_kept_vectors_are_bounded(counted: tuple[Cache, Counting]) -> None:
    cache, embedder = counted
    texts = [f"question {i}" for i in range(VECTOR_MEMO + 1)]
    for text in texts:
        cache.embed(text, cache.counters)
    cache.embed(texts[-1], cache.counters)  # kept
    cache.embed(texts[0], cache.counters)  # the oldest: evicted, embedded again
    assert embedder.asked == [*texts, texts[0]]
    assert len(cache._vectors) == VECTOR_MEMO


def test_guard_features_are_kept_for_as_many_hits_as_vectors() -> None:
    """A hit reads the features of two texts (query and stored): 256 repeated questions
    and the texts they hit find their features kept, as they find their vectors."""
    features.cache_clear()
    texts = [f"question {i}" for i in range(2 * VECTOR_MEMO)]
    for text in texts:
        features(text)
    for text in texts:  # in the same order: an LRU smaller than the cycle misses them all
        features(text)
    assert features.cache_info().hits == len(texts)
