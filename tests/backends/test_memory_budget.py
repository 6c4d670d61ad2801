"""CACHE_MEMORY_MAX_BYTES holds within 10% under any mix, measured with tracemalloc.

The embedded backend once charged a semantic entry for one vector while its user's
partition had allocated eight: 20,000 users' entries took ~3x the budget."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest

from pmm_memo import Cache, CacheConfig, cached, semantic_lookup
from pmm_memo.backends.memory import MemoryBackend

BUDGET = 4 * 1024 * 1024
DIM = 384


def _held(fill: Callable[[Cache], None]) -> tuple[int, MemoryBackend]:
    backend = MemoryBackend(max_entries=10**6, max_bytes=BUDGET)
    cache = Cache(
        CacheConfig(embedder="offline", embedding_dimensions=DIM, memory_max_bytes=BUDGET),
        backend=backend,
    )
    _ = cache.embedder  # built before measuring: the model is not the cache's data
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fill(cache)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return held, backend


def _semantic_users(cache: Cache) -> None:
    @semantic_lookup(0.95, tenant="budget", cache=cache)
    def ask(prompt: str, user_id: str) -> str:
        return "ok"

    for u in range(20000):
        ask(f"question {u % 50}", user_id=f"user-{u}")


def _mixed(cache: Cache) -> None:
    @semantic_lookup(0.95, tenant="budget", cache=cache)
    def ask(prompt: str, user_id: str) -> str:
        return "answer " * 20

    @cached(tenant="budget", cache=cache)
    def rows(n: int) -> list[dict[str, object]]:
        return [{"id": i, "name": f"row {i}", "score": i / 3} for i in range(n % 40)]

    @cached(tenant="budget", cache=cache)
    def blob(n: int, text: str) -> bytes:
        return bytes(n % 5000)

    @cached(tenant="budget", cache=cache)
    def vec(n: int) -> np.ndarray:
        return np.zeros(n % 300 + 1)

    for i in range(6000):
        ask("long question " * (i % 200) + str(i), user_id=f"user-{i % 700}")
        rows(i)
        blob(i, "argument text " * (i % 50))
        vec(i)


@pytest.mark.slow
@pytest.mark.parametrize("fill", [_semantic_users, _mixed], ids=["20k-users", "mixed"])
def test_budget_holds_within_ten_percent(fill: Callable[[Cache], None]) -> None:
    held, backend = _held(fill)
    assert backend.nbytes <= BUDGET
    assert held <= BUDGET * 1.10, f"{held / BUDGET:.2f}x the budget held"
    # ...and the budget is used, not wasted by overcharging.
    assert held >= BUDGET * 0.5, f"only {held / BUDGET:.2f}x the budget held"
