"""The README demo: a slow fake LLM made fast, with exact and semantic hits.

Runs on the embedded backend (no server). Set CACHE_REDIS_URL=redis://... to run the same
code on Redis with RediSearch.
"""

from __future__ import annotations

import logging
import time

import pmm_memo
from pmm_memo import cached, semantic_lookup

logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")

# The offline embedder is lexical (wording, not meaning) and needs no network or key.
pmm_memo.configure(embedder="offline")


@cached(tenant="pmm_llm", ttl=3600, embed_key=True)
def complete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> str:
    """Pretend to be an LLM: slow and deterministic."""
    time.sleep(0.3)
    return f"[{model}] an answer to: {prompt}"


@semantic_lookup(threshold=0.97, tenant="pmm_llm", ttl=3600)
def ask(prompt: str, model: str = "gpt-4o-mini", user_id: str | None = None) -> str:
    time.sleep(0.3)
    return f"[{model}] answer for {user_id}: {prompt}"


def timed(label: str, fn: object, *args: object, **kwargs: object) -> None:
    start = time.perf_counter()
    result = fn(*args, **kwargs)  # type: ignore[operator]
    ms = (time.perf_counter() - start) * 1000
    print(f"{label:<46} {ms:9.3f} ms  -> {result}")


def main() -> None:
    print("Exact caching (@cached)")
    timed("first call (miss, runs the function)", complete, "What is Redis?")
    timed("same call (exact hit)", complete, "What is Redis?")
    timed(
        "same call, keyword form (same key)", complete, prompt="What is Redis?", model="gpt-4o-mini"
    )
    timed("another model (a different key: miss)", complete, "What is Redis?", model="gpt-4o")
    info = complete.cache_info()
    print(f"cache_info: hits={info.hits} misses={info.misses} entries={info.currsize}")

    print("\nSemantic caching (@semantic_lookup, threshold 0.97)")
    timed("first question (miss)", ask, "How do I reset my password?", user_id="alice")
    timed(
        "reworded: case and punctuation (semantic hit)",
        ask,
        "how do I reset my password",
        user_id="alice",
    )
    timed("words reordered (semantic hit)", ask, "My password: how do I reset it?", user_id="alice")
    timed(
        "same words, another user (never shared)", ask, "how do I reset my password", user_id="bob"
    )
    timed("unrelated question (miss)", ask, "What is the capital of France?", user_id="alice")
    sem = ask.cache_info()
    print(
        f"cache_info: hits={sem.hits} semantic_hits={sem.semantic_hits} "
        f"misses={sem.misses} entries={sem.currsize}"
    )


if __name__ == "__main__":
    main()
