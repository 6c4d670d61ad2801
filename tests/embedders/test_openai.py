"""The OpenAI embedder through the real `openai` client, against the tests' loopback
OpenAI-compatible server (counts calls, can fail, stall or return bad vectors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pmm_memo import Cache, CacheConfig, EmbeddingError, semantic_lookup
from pmm_memo.embedders import make_embedder
from pmm_memo.embedders._cached import CachedEmbedder
from pmm_memo.embedders.openai import OpenAIEmbedder
from tests.conftest import make_cache, run, url_for
from tests.support.openai_server import FakeOpenAI

Q = "How do I reset my password?"
NEAR = "how do i reset my password"


def openai_cache(kind: str, url: str | None, **settings: Any) -> Cache:
    settings.setdefault("openai_max_retries", 0)
    settings.setdefault("openai_timeout", 2.0)
    return make_cache(kind, url, embedder="openai", **settings)


@pytest.fixture
def ocache(backend_kind: str, request: pytest.FixtureRequest, openai_server: FakeOpenAI) -> Cache:
    url = url_for(backend_kind, request)
    return openai_cache(backend_kind, url)


def test_auto_picks_openai_when_key_is_set(openai_server: FakeOpenAI) -> None:
    embedder = make_embedder(CacheConfig(embedding_dimensions=64))
    assert isinstance(embedder, OpenAIEmbedder)


def test_real_client_vectors_batches_and_dimensions(openai_server: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", 64, batch_size=3, max_retries=0)
    vectors = embedder.embed([f"text {i}" for i in range(7)])
    assert vectors.shape == (7, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    bodies = [c["body"] for c in openai_server.calls]
    assert [len(b["input"]) for b in bodies] == [3, 3, 1]
    assert all(b["dimensions"] == 64 and b["model"] == "text-embedding-3-small" for b in bodies)
    assert openai_server.calls[0]["auth"] == "Bearer sk-test-not-a-real-key"


def test_async_client(openai_server: FakeOpenAI) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", 64, max_retries=0)

    async def main() -> np.ndarray:
        out = await embedder.aembed(["a", "b"])
        await embedder.aclose()
        return out

    assert run(main()).shape == (2, 64)


def test_each_text_is_embedded_once(ocache: Cache, openai_server: FakeOpenAI) -> None:
    embedder = ocache.embedder
    assert isinstance(embedder, CachedEmbedder)
    embedder.embed(["a", "b"])
    embedder.embed(["b", "c", "a"])  # only "c" is new
    assert openai_server.embedded_texts == ["a", "b", "c"]
    assert embedder.counters.hits == 2 and embedder.counters.misses == 3


def test_semantic_lookup_with_openai(ocache: Cache, openai_server: FakeOpenAI) -> None:
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="pmm_llm", cache=ocache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer"

    assert ask(Q) == ask(NEAR) == "answer"
    embeds_before = openai_server.count("/embeddings")
    assert ask(Q) == "answer"  # exact hit: no embedding request at all
    assert openai_server.count("/embeddings") == embeds_before
    assert ask(NEAR) == "answer"  # NEAR's embedding comes from the pmm_embeddings cache
    assert openai_server.count("/embeddings") == embeds_before
    assert calls == [Q]


@pytest.mark.parametrize("fault", ["status", "slow", "wrong_dim", "nan"])
def test_embedding_failure_falls_back_to_the_function(
    backend_kind: str, request: pytest.FixtureRequest, openai_server: FakeOpenAI, fault: str
) -> None:
    url = url_for(backend_kind, request)
    cache = openai_cache(backend_kind, url, openai_timeout=0.5)
    if fault == "status":
        openai_server.fail_status = 500
    elif fault == "slow":
        openai_server.delay = 1.5
    elif fault == "wrong_dim":
        openai_server.wrong_dim = 12
    else:
        openai_server.nan = True
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt[::-1]

    assert ask(Q) == Q[::-1]
    assert ask(NEAR) == NEAR[::-1]
    assert ask(Q) == Q[::-1]  # still cached exactly
    assert calls == [Q, NEAR]
    assert ask.cache_info().errors >= 1
    openai_server.reset()


def test_bad_vectors_raise_clear_errors(openai_server: FakeOpenAI) -> None:
    openai_server.wrong_dim = 12
    with pytest.raises(
        EmbeddingError, match=r"'openai' returned shape \(1, 12\), expected \(1, 64\)"
    ):
        OpenAIEmbedder("text-embedding-3-small", 64, max_retries=0).embed(["x"])
    openai_server.wrong_dim = None
    openai_server.nan = True
    with pytest.raises(EmbeddingError, match="NaN"):
        OpenAIEmbedder("text-embedding-3-small", 64, max_retries=0).embed(["x"])
