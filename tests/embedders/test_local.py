"""The local MiniLM embedder (extra `local`): a real semantic model, offline, on CPU."""

from __future__ import annotations

from typing import Any

import pytest

from pmm_memo import Cache, CacheConfig, semantic_lookup
from pmm_memo.embedders.local import LocalEmbedder


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_paraphrases_match_and_dimension_follows_model(local: LocalEmbedder) -> None:
    assert local.dim == 384
    v = local.embed(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "What is the capital of France?",
        ]
    )
    assert float(v[0] @ v[1]) > 0.8  # different words, same meaning
    assert float(v[0] @ v[2]) < 0.3


def _ask_three(cache: Cache) -> list[Any]:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.8, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "Use the reset link on the login page."

    ask("How do I reset my password?")
    ask("I forgot my password, how can I change it?")
    ask("What is the capital of France?")
    return calls


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_semantic_lookup_with_local_model(
    local: LocalEmbedder, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    cache = Cache(CacheConfig(embedder="local", redis_url=url), embedder=local)
    assert len(_ask_three(cache)) == 2
    assert cache.dimensions == 384
