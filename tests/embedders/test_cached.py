"""The cache of a remote embedder's vectors (`embedders._cached`), on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from pmm_memo.embedders._cached import CachedEmbedder
from pmm_memo.embedders.offline import OfflineEmbedder
from tests.conftest import make_cache, url_for


class _Counting(OfflineEmbedder):
    remote = True

    def __init__(self, model: str) -> None:
        super().__init__(dim=64)
        self.model = model
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return super().embed(texts)


@pytest.mark.parametrize("model", ["text-embedding-3-small", "m\ud800odel", "m\x1fx"])
@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_any_model_name_is_cached(kind: str, model: str, request: pytest.FixtureRequest) -> None:
    """A model name is anyone's string (was: a lone surrogate raised UnicodeEncodeError)."""
    cache = make_cache(kind, url_for(kind, request))
    inner = _Counting(model)
    cached = CachedEmbedder(inner, cache)
    first = cached.embed(["a question", "another \ud800 one"])
    again = cached.embed(["a question", "another \ud800 one"])
    assert np.array_equal(first, again)
    assert inner.texts == ["a question", "another \ud800 one"]  # the second call: cached
    cache.close()
