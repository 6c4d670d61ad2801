"""Which results a cache may keep: values, never one-shot objects.

A generator, iterator, coroutine or other awaitable is consumed by whoever uses it first.
Storing the *object* (the embedded backend keeps objects as they are) hands the second
caller an exhausted generator or "cannot reuse already awaited coroutine"; Redis cannot
encode them at all. So every backend behaves alike:

- a generator function or async generator function cannot be decorated (TypeError at
  decoration time: it can only ever return a one-shot object);
- a function that *returns* such an object gets it back, uncached, and the call is
  counted as `uncacheable` (logged once per function). Concurrent callers never share
  it either: each one gets an object of its own (see `_memo`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

# Results that are certainly values: checked by identity before the ABC checks below.
_PLAIN: frozenset[type] = frozenset(
    {str, bytes, int, float, bool, type(None), list, dict, tuple, set, frozenset}
)


def reject_generator_function(func: Callable[..., Any]) -> None:
    """Raise TypeError when `func` (or what it wraps) is a generator function."""
    try:
        target = inspect.unwrap(func)
    except ValueError:  # a __wrapped__ cycle
        target = func
    kind = (
        "a generator function"
        if inspect.isgeneratorfunction(target)
        else "an async generator function"
        if inspect.isasyncgenfunction(target)
        else None
    )
    if kind is not None:
        name = getattr(target, "__qualname__", repr(target))
        raise TypeError(
            f"cannot cache {name}: it is {kind}, so every call returns a one-shot "
            f"iterator that a second caller would receive exhausted. Cache a function that "
            f"returns the items as a list (e.g. `return list(...)`) instead"
        )


def one_shot_kind(result: Any) -> str | None:
    """What kind of one-shot object `result` is ("a generator", ...), or None for a value."""
    if type(result) in _PLAIN:
        return None
    if inspect.isgenerator(result):
        return "a generator"
    if inspect.isasyncgen(result):
        return "an async generator"
    if inspect.iscoroutine(result):
        return "a coroutine"
    if isinstance(result, Iterator):
        return f"an iterator ({type(result).__qualname__})"
    if isinstance(result, AsyncIterator):
        return f"an async iterator ({type(result).__qualname__})"
    if isinstance(result, Awaitable):
        return f"an awaitable ({type(result).__qualname__})"
    return None


class OneShot:
    """A one-shot result on its way back through single-flight: only the caller whose
    computation produced it (`owner`) may return it; other waiters compute their own."""

    __slots__ = ("owner", "value")

    def __init__(self, value: Any, owner: object) -> None:
        self.value = value
        self.owner = owner
