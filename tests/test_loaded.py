"""A library another thread is still importing never breaks a cached call: a half-built
numpy or pydantic in `sys.modules` (no `ndarray`/`BaseModel` yet) means "not loaded"."""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterator

import pytest

from pmm_memo import Cache, cached
from pmm_memo._loaded import loaded_class


@dataclasses.dataclass(frozen=True)
class Query:
    text: str


@pytest.fixture
def half_imported() -> Iterator[None]:
    """numpy and pydantic as another thread's unfinished import leaves them."""
    saved = {name: sys.modules.get(name) for name in ("numpy", "pydantic")}
    for name in saved:
        sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_loaded_class_is_none_until_the_class_exists(half_imported: None) -> None:
    assert loaded_class("numpy", "ndarray") is None
    assert loaded_class("pydantic", "BaseModel") is None
    assert loaded_class("no_such_module_here", "X") is None
    assert loaded_class("types", "ModuleType") is types.ModuleType


def test_calls_miss_and_hit_while_numpy_is_half_imported(cache: Cache, half_imported: None) -> None:
    calls: list[str] = []

    @cached(tenant="t_loaded", cache=cache)
    def answer(q: Query, n: float) -> dict[str, object]:
        calls.append(q.text)
        return {"text": q.text, "n": n, "items": [Query("inner"), (1, 2)]}

    first = answer(Query("x"), 1.5)
    assert answer(Query("x"), 1.5) == first
    assert answer(Query("y"), 1.5)["text"] == "y"
    assert calls == ["x", "y"]
    info = answer.cache_info()
    assert (info.hits, info.misses, info.errors, info.uncacheable) == (1, 2, 0, 0)
