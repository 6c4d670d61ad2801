"""Per-call control without editing call sites: `bypass()`, `refresh()`, `disabled()`.

A ContextVar (not a thread-local) so the mode follows the code that set it into threads
started with `contextvars.copy_context()` and into asyncio tasks created inside the block,
and never leaks into unrelated concurrent tasks.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


class Mode(enum.Enum):
    NORMAL = "normal"
    BYPASS = "bypass"  # neither read nor write the cache; call the function
    REFRESH = "refresh"  # do not read; call the function and overwrite the entry
    DISABLED = "disabled"  # the decorator is transparent: no key, no counters


_mode: contextvars.ContextVar[Mode] = contextvars.ContextVar("pmm_memo_mode", default=Mode.NORMAL)

current_mode = _mode.get


@contextmanager
def _set(mode: Mode) -> Iterator[None]:
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)


def bypass() -> AbstractContextManager[None]:
    """Inside the block, decorated calls neither read nor write the cache."""
    return _set(Mode.BYPASS)


def refresh() -> AbstractContextManager[None]:
    """Inside the block, decorated calls recompute and overwrite their entries."""
    return _set(Mode.REFRESH)


def disabled() -> AbstractContextManager[None]:
    """Inside the block, decorators do nothing at all (like CACHE_ENABLED=false)."""
    return _set(Mode.DISABLED)
