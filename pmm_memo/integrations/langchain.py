"""A LangChain LLM cache on pmm_memo: exact or semantic, embedded or Redis.

    from langchain_core.globals import set_llm_cache
    from pmm_memo.integrations.langchain import PmmMemoCache

    set_llm_cache(PmmMemoCache(tenant="pmm_llm", ttl=3600))                 # exact
    set_llm_cache(PmmMemoCache(tenant="pmm_llm", semantic_threshold=0.95))  # semantic

- Entries are keyed by `(prompt, llm_string)` as LangChain intends: `llm_string` is the
  model and every parameter that changes the answer, so a prompt never hits another
  model's or temperature's answer. In semantic mode the prompt is embedded and searched
  only among entries with the same `llm_string` (pmm_memo's scope), with the same
  threshold semantics as `@semantic_lookup`.
- A chat model hands the cache the JSON of its whole message list. Embedding all of it
  let a long system prompt carry a different instruction over ("Customer tier: gold."
  vs "free." in 1,300 characters of policy answered each other at 0.95). So, as the
  OpenAI integration does, only the last human message is embedded; the other messages
  (system prompt, history) are scope and must be equal.
- Fail-open: a cache failure (server down, corrupt entry, encoding error) is a miss or a
  skipped write, counted and logged once; it never reaches the chain.
- Stored as plain data, never pickled: `Generation` text and info, and chat messages as
  `message_to_dict` dicts, rebuilt by `messages_from_dict` (message classes only).
- `cache_info()` gives the counters; `clear()` removes this cache's entries in its tenant.
Needs the `langchain` extra (`langchain-core`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from .._binding import MISSING
from .._context import Mode, current_mode
from .._decorators import cached, semantic_lookup
from .._memo import _Memo
from .._stats import CacheInfo

if TYPE_CHECKING:
    from .._cache import Cache

logger = logging.getLogger("pmm_memo")

__all__ = ["PmmMemoCache"]


def _split(prompt: str) -> tuple[str, Any]:
    """(text to embed, the rest of the prompt): for a chat model's message list (the
    JSON `langchain_core.load.dumps` makes of it) the last human message's text and the
    list with that text taken out; for any other prompt, the prompt and None. The pair
    holds everything the prompt does, so exact keys still tell every prompt apart."""
    if not prompt.startswith("[{"):
        return prompt, None
    try:
        messages = json.loads(prompt)
    except ValueError:
        return prompt, None
    if not isinstance(messages, list) or not messages or json.dumps(messages) != prompt:
        return prompt, None  # not LangChain's dump (parsing must not merge two prompts)
    last = messages[-1]
    fields = last.get("kwargs") if isinstance(last, dict) else None
    if not isinstance(fields, dict) or fields.get("type") != "human":
        return "", messages  # no question last (a tool result, ...): exact matching only
    content = fields.get("content")
    if not isinstance(content, str):
        return "", messages  # text and images: exact matching only
    rest = [*messages[:-1], {**last, "kwargs": {**fields, "content": None}}]
    return content, rest


def _dump(generations: Sequence[Generation]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for g in generations:
        info = g.generation_info
        if isinstance(g, ChatGeneration):
            out.append({"kind": "chat", "message": message_to_dict(g.message), "info": info})
        else:
            out.append({"kind": "text", "text": g.text, "info": info})
    return out


def _load(value: Any) -> list[Generation] | None:
    """Generations from a stored value, or None if it is not one of ours."""
    if not isinstance(value, list):
        return None
    out: list[Generation] = []
    for item in value:
        if not isinstance(item, dict):
            return None
        if item.get("kind") == "chat":
            (message,) = messages_from_dict([item["message"]])
            out.append(ChatGeneration(message=message, generation_info=item.get("info")))
        elif item.get("kind") == "text":
            out.append(Generation(text=item["text"], generation_info=item.get("info")))
        else:
            return None
    return out


class PmmMemoCache(BaseCache):
    """LangChain `BaseCache` (sync and async) backed by a pmm_memo cache.

    `tenant`, `ttl` (seconds; None = CACHE_DEFAULT_TTL), `semantic_threshold` (cosine
    similarity in (0, 1]; None = exact only), `cache` (a `pmm_memo.Cache`; default: the
    process-wide one, as for the decorators).
    """

    def __init__(
        self,
        *,
        tenant: str = "pmm_llm",
        ttl: float | None = None,
        semantic_threshold: float | None = None,
        cache: Cache | None = None,
    ) -> None:
        if semantic_threshold is None:
            decorator = cached(tenant=tenant, ttl=ttl, cache=cache, version="langchain-2")
        else:
            decorator = semantic_lookup(
                semantic_threshold,
                tenant=tenant,
                ttl=ttl,
                cache=cache,
                version="langchain-2",
                lock=False,
            )

        # Never called: it gives the entries a function identity, a key layout
        # (`_split(prompt)`, llm_string) and the scope (the conversation around the
        # embedded text, llm_string) the semantic search filters on.
        def langchain_llm(text: str, conversation: Any, llm_string: str) -> Any:
            raise AssertionError("not called")

        fn: Any = decorator(langchain_llm)  # the wrapper; its _Memo holds keys and counters
        self._fn = fn
        self._memo: _Memo = fn._memo()
        self.semantic = semantic_threshold is not None

    # -- shared ----------------------------------------------------------------------------

    def _prepare(
        self, prompt: str, llm_string: str, writing: bool
    ) -> tuple[Cache, Any, str, Any] | None:
        """Cache, bound call, key and check for this call, or None when it must not touch
        the cache: the cache is off, or the mode forbids it (a lookup reads only in NORMAL
        mode; an update writes in NORMAL and REFRESH, as the decorators do)."""
        memo = self._memo
        cache = memo.cache()
        mode = current_mode()
        if not cache.enabled or mode is Mode.DISABLED:
            return None
        if mode is not Mode.NORMAL and not (writing and mode is Mode.REFRESH):
            return None
        call = memo.keys.bind((*_split(prompt), llm_string), {}, False)
        if call is None:
            return None
        key, check = memo.key_of(cache, call)
        return cache, call, key, check

    def _failed(self, what: str, exc: BaseException) -> None:
        self._memo.counters.errors += 1
        self._memo.cache().log_once(
            f"langchain-{what}", logging.WARNING, "LangChain cache %s failed: %r", what, exc
        )

    def _served(self, value: Any, semantic: bool) -> RETURN_VAL_TYPE | None:
        generations = _load(value)
        if generations is None:
            self._memo.counters.corrupt += 1
            return None
        if semantic:
            self._memo.counters.semantic_hits += 1
        else:
            self._memo.counters.hits += 1
        return generations

    # -- sync ------------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        """Stored generations for this prompt and model, or None (a miss)."""
        try:
            prepared = self._prepare(prompt, llm_string, writing=False)
            if prepared is None:
                return None
            cache, call, key, check = prepared
            memo = self._memo
            value = cache.read(key, check, memo.counters)
            if value is not MISSING:
                return self._served(value, False)
            sem = memo.semantic_of(cache, call)
            if self.semantic and sem.text is not None:
                vector = cache.embed(sem.text.window, memo.counters)
                if vector is not None:
                    found = memo.lookup(cache, call, sem, vector)
                    if found is not None and memo.verified(sem.text.window, found):
                        return self._served(found.value, True)
            memo.counters.misses += 1
        except Exception as exc:
            self._failed("lookup", exc)
        return None

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        """Store the generations LangChain just computed."""
        try:
            prepared = self._prepare(prompt, llm_string, writing=True)
            if prepared is None:
                return
            cache, call, key, check = prepared
            memo = self._memo
            vector = None
            sem = memo.semantic_of(cache, call)
            if sem.text is not None:
                vector = cache.embed(sem.text.window, memo.counters)
            entry = memo.entry(cache, call, key, check, _dump(return_val), vector, sem)
            cache.write(entry, memo.ttl_for(cache), memo.counters)
        except Exception as exc:
            self._failed("update", exc)

    def clear(self, **kwargs: Any) -> None:
        """Remove every entry of this cache (its tenant, its entries only)."""
        self._fn.cache_clear()

    # -- async -----------------------------------------------------------------------------

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        try:
            prepared = self._prepare(prompt, llm_string, writing=False)
            if prepared is None:
                return None
            cache, call, key, check = prepared
            memo = self._memo
            value = await cache.aread(key, check, memo.counters)
            if value is not MISSING:
                return self._served(value, False)
            sem = memo.semantic_of(cache, call)
            if self.semantic and sem.text is not None:
                vector = await cache.aembed(sem.text.window, memo.counters)
                if vector is not None:
                    found = await memo.alookup(cache, call, sem, vector)
                    if found is not None and await memo.averified(sem.text.window, found):
                        return self._served(found.value, True)
            memo.counters.misses += 1
        except Exception as exc:
            self._failed("lookup", exc)
        return None

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        try:
            prepared = self._prepare(prompt, llm_string, writing=True)
            if prepared is None:
                return
            cache, call, key, check = prepared
            memo = self._memo
            vector = None
            sem = memo.semantic_of(cache, call)
            if sem.text is not None:
                vector = await cache.aembed(sem.text.window, memo.counters)
            entry = memo.entry(cache, call, key, check, _dump(return_val), vector, sem)
            await cache.awrite(entry, memo.ttl_for(cache), memo.counters)
        except Exception as exc:
            self._failed("update", exc)

    async def aclear(self, **kwargs: Any) -> None:
        # Clearing scans the tenant (SCAN + UNLINK in batches): off the event loop.
        await asyncio.to_thread(self.clear)

    def cache_info(self) -> CacheInfo:
        """Hits, semantic hits, misses, errors and entries of this cache."""
        return self._memo.cache_info()
