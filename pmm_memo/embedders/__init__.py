"""Embedders: `offline` (default without an OpenAI key), `openai`, `local` (MiniLM)."""

from __future__ import annotations

import logging
import os

from .._config import CacheConfig
from ._base import BaseEmbedder, Embedder, check_vectors
from .offline import OfflineEmbedder

__all__ = ["BaseEmbedder", "Embedder", "OfflineEmbedder", "check_vectors", "make_embedder"]

logger = logging.getLogger("pmm_memo")


def make_embedder(config: CacheConfig) -> Embedder:
    """The embedder CACHE_EMBEDDER asks for (`auto`: OpenAI when OPENAI_API_KEY is set)."""
    choice = config.embedder
    if choice == "auto":
        if os.environ.get("OPENAI_API_KEY"):
            choice = "openai"
        else:
            logger.warning(
                "OPENAI_API_KEY is not set; using the offline embedder, which "
                "matches near-identical wording, not meaning (set CACHE_EMBEDDER to choose)"
            )
            choice = "offline"
    if choice == "openai":
        from .openai import OpenAIEmbedder

        return OpenAIEmbedder(
            config.openai_embedding_model,
            config.embedding_dimensions,
            batch_size=config.batch_size,
            timeout=config.openai_timeout,
            max_retries=config.openai_max_retries,
        )
    if choice == "local":
        from .local import LocalEmbedder

        return LocalEmbedder()
    return OfflineEmbedder(config.embedding_dimensions, batch_size=max(config.batch_size, 1))
