"""The process-wide default cache that decorators use when no `cache=` is given.

Resolved at call time, not decoration time, so `configure()` after import (in an app's
start-up, or a test) applies to every decorated function.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from ._cache import Cache
from ._config import CacheConfig

_default: Cache | None = None
_lock = threading.Lock()  # held while a cache is built: a first call, or configure()


def default_cache() -> Cache:
    """The default cache, built from the environment on first use."""
    cache = _default
    if cache is not None:
        return cache
    return _build(None)


def _build(config: CacheConfig | None) -> Cache:
    global _default
    with _lock:
        if _default is None or config is not None:
            old = _default
            _default = Cache(config if config is not None else CacheConfig.from_env())
            if old is not None:
                old.close()
        return _default


def _after_fork_in_child() -> None:
    """A fork while another thread is inside `_build` (building the default cache can
    take a second: a first connection, an index check) copies `_lock` held by a thread
    that does not exist in the child, whose first cache call would then wait forever.
    The child gets a fresh lock; `_default` is whatever was set before the fork (None
    if that build had not finished: the child builds its own)."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def configure(config: CacheConfig | Mapping[str, Any] | None = None, /, **settings: Any) -> Cache:
    """Set the process-wide default cache.

    `configure(CacheConfig(...))`, `configure(redis_url="redis://...")` or
    `configure({"redis_url": "redis://..."})` (settings over the environment's), or
    `configure()` to re-read the environment. Unknown or invalid settings: ConfigError.
    """
    if isinstance(config, Mapping):
        settings = {**config, **settings}
        config = None
    if config is not None and settings:
        raise TypeError("configure() takes a CacheConfig or keyword settings, not both")
    if config is None:
        config = CacheConfig.from_env()
        if settings:
            config = config.replace(**settings)
    elif not isinstance(config, CacheConfig):
        raise TypeError(
            f"configure() expects a CacheConfig, a mapping of settings or keyword "
            f"settings, got {type(config).__name__}"
        )
    return _build(config)
