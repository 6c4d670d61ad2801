"""Embedders: `offline` (lexical), `openai`, `local` (MiniLM on ONNX Runtime)."""

from __future__ import annotations

import logging
import os
import threading

from .._config import CacheConfig
from ._base import BaseEmbedder, Embedder, check_vectors
from .offline import OfflineEmbedder

__all__ = [
    "BaseEmbedder",
    "Embedder",
    "OfflineEmbedder",
    "check_vectors",
    "choose_embedder",
    "make_embedder",
]

logger = logging.getLogger("pmm_memo")
_announced: set[tuple[str, str]] = set()
_announced_lock = threading.Lock()


def choose_embedder(config: CacheConfig) -> tuple[str, str]:
    """(embedder name, why): what CACHE_EMBEDDER resolves to, without loading anything.

    `auto` prefers meaning over wording and a model over none: OpenAI when
    OPENAI_API_KEY is set, else the local MiniLM when the `local` extra is installed,
    else the offline (lexical) embedder.
    """
    choice = config.embedder
    if choice != "auto":
        return choice, "CACHE_EMBEDDER"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai", "auto: OPENAI_API_KEY is set"
    from .local import installed

    if installed():
        return "local", "auto: no OPENAI_API_KEY; the `local` extra is installed"
    return "offline", "auto: no OPENAI_API_KEY and no `local` extra"


def _announce(choice: str, why: str) -> None:
    """Log the embedder choice once per process (per distinct choice)."""
    with _announced_lock:
        if (choice, why) in _announced:
            return
        _announced.add((choice, why))
    if choice == "offline" and why.startswith("auto"):
        logger.warning(
            "embedder: offline (%s); it matches near-identical wording, not meaning "
            "(set OPENAI_API_KEY, pip install 'pmm_memo[local]', or CACHE_EMBEDDER)",
            why,
        )
    else:
        logger.info("embedder: %s (%s)", choice, why)


def make_embedder(config: CacheConfig) -> Embedder:
    """The embedder CACHE_EMBEDDER asks for (see `choose_embedder` for `auto`)."""
    choice, why = choose_embedder(config)
    _announce(choice, why)
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
