"""A semantically cached function the semantic tests share."""

from __future__ import annotations

from typing import Any

from pmm_memo import Cache, semantic_lookup


def make_ask(cache: Cache, calls: list[Any], threshold: float = 0.9, tenant: str = "t") -> Any:
    """`ask(prompt, model="m", user_id=None)` under `@semantic_lookup`: it records each
    computed call in `calls` and answers `"<model>/<user_id>: <prompt>"`."""

    @semantic_lookup(threshold=threshold, tenant=tenant, cache=cache)
    def ask(prompt: str, model: str = "m", user_id: str | None = None) -> str:
        calls.append((prompt, model, user_id))
        return f"{model}/{user_id}: {prompt}"

    return ask
