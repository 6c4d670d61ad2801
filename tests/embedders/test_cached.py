"""The cache of a remote embedder's vectors (`embedders._cached`), on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from pmm_memo.embedders import BaseEmbedder
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


class _Remote(BaseEmbedder):
    """A custom remote embedder that, like many, sets neither `name` nor `model`."""

    remote = True

    def __init__(self, sign: float) -> None:
        super().__init__(dim=8)
        self.sign = sign

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return np.full((len(texts), 8), self.sign, dtype=np.float32)


class _OtherRemote(_Remote):
    pass


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_two_vector_spaces_never_share_cached_vectors(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Cached vectors are keyed by the embedder's identity, the one its entries and index
    are (name, model or class, dimensions): two custom embedders both named "base" got
    each other's vectors."""
    cache = make_cache(kind, url_for(kind, request))
    first = CachedEmbedder(_Remote(1.0), cache).embed(["a question"])
    second = CachedEmbedder(_OtherRemote(-1.0), cache).embed(["a question"])
    assert first[0][0] > 0 and second[0][0] < 0
    cache.close()
