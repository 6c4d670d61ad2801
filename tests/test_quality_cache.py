"""benchmarks/quality.py --embedding-cache: vectors come back from disk, equal, unembedded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks._embed import DiskCachedEmbedder
from pmm_memo.embedders import OfflineEmbedder


class _Counting(OfflineEmbedder):
    def __init__(self) -> None:
        super().__init__(32)
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


def test_a_second_run_embeds_only_new_texts(tmp_path: Path) -> None:
    inner = _Counting()
    first = DiskCachedEmbedder(inner, tmp_path).embed(["a b", "c d", "a b"])
    assert inner.seen == ["a b", "c d"]  # each text once
    again = DiskCachedEmbedder(inner, tmp_path).embed(["c d", "e f", "a b"])
    assert inner.seen == ["a b", "c d", "e f"]
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])
    assert first.shape == (3, 32) and first.dtype == np.float32
