"""pmm_memo: one decorator that makes slow, costly calls cheap the second time.

    from pmm_memo import cached, semantic_lookup

    @cached(tenant="pmm_llm", ttl=3600)
    def complete(prompt: str, model: str = "gpt-4o-mini") -> str: ...

Everything not listed in `__all__` is private and may change.
"""

from ._cache import Cache
from ._config import CacheConfig
from ._context import bypass, disabled, refresh
from ._decorators import cached, semantic_lookup
from ._errors import (
    CodecError,
    ConfigError,
    EmbeddingError,
    IndexSchemaError,
    PmmMemoError,
    SearchUnavailableError,
    UnencodableArgumentError,
)
from ._json_tree import allow_type
from ._manager import CacheManager
from ._runtime import configure, default_cache
from ._stats import CacheInfo
from ._typing import CachedFunction

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CacheConfig",
    "CacheInfo",
    "CacheManager",
    "CachedFunction",
    "CodecError",
    "ConfigError",
    "EmbeddingError",
    "IndexSchemaError",
    "PmmMemoError",
    "SearchUnavailableError",
    "UnencodableArgumentError",
    "__version__",
    "allow_type",
    "bypass",
    "cached",
    "configure",
    "default_cache",
    "disabled",
    "refresh",
    "semantic_lookup",
]
