"""Cache every OpenAI chat completion and embedding call, with no edit to call sites.

    from pmm_memo.integrations.openai import instrument, uninstrument
    instrument(tenant="pmm_llm", ttl=3600, semantic_threshold=None)
    client.chat.completions.create(...)   # now cached, for OpenAI and AsyncOpenAI

- The key covers every request parameter (model, messages, temperature, top_p, seed,
  tools, response_format, max_tokens, extra_body, ...) and the client's base URL; never
  the API key, headers or timeouts.
- Non-deterministic chat requests (temperature not explicitly 0 — the API's default is
  1 — or n > 1) are passed through unless `cache_nondeterministic=True`.
- Hits return the same typed objects (`ChatCompletion`, `CreateEmbeddingResponse`).
- `stream=True` is recorded while the caller consumes it and replayed as a stream.
- With `semantic_threshold`, non-streaming chat calls use semantic lookup on the last user
  message, scoped by every other parameter (model, system prompt, history, ...).
- Requests that cannot be keyed (exotic argument types) are passed through, logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wrapt

from .._decorators import _Memo, cached, semantic_lookup
from .._errors import UnencodableArgumentError
from .._keys import MISSING
from .._runtime import default_cache
from ._streams import (
    AsyncRecordingStream,
    AsyncReplayStream,
    Chunks,
    RecordingStream,
    ReplayStream,
)

if TYPE_CHECKING:
    from .._cache import Cache

logger = logging.getLogger("pmm_memo")

# Transport options: they never change the answer, so they are not part of the key.
_NOT_KEYED = frozenset({"extra_headers", "timeout"})
_PATCHES = (
    ("openai.resources.chat.completions", "Completions.create", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.create", "chat", True),
    ("openai.resources.embeddings", "Embeddings.create", "embeddings", False),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", "embeddings", True),
)


@dataclass
class _Installed:
    cache: Cache | None
    nondeterministic: bool
    chat: Any
    achat: Any
    chat_semantic: Any
    achat_semantic: Any
    embeddings: Any
    aembeddings: Any
    originals: list[tuple[Any, str, Any]]


_installed: _Installed | None = None


def _given(value: Any) -> bool:
    import openai

    return not isinstance(value, openai.NotGiven | openai.Omit)


def _request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in _NOT_KEYED and _given(v)}


def _deterministic(request: dict[str, Any]) -> bool:
    temperature = request.get("temperature", 1.0)
    return temperature == 0 and (request.get("n") or 1) <= 1


def _last_user_text(messages: list[Any]) -> tuple[int, str] | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return i, m["content"]
    return None


def _build(
    tenant: str, ttl: float | None, threshold: float | None, cache: Cache | None
) -> dict[str, Any]:
    """The decorated inner functions: all caching logic is the decorators' own."""

    def exact(fn: Callable[..., Any]) -> Any:
        return cached(tenant=tenant, ttl=ttl, ignore=("call",), cache=cache, version="openai-1")(fn)

    @exact
    def chat(request: dict[str, Any], base_url: str, call: Callable[[], Any]) -> Any:
        return call()

    @exact
    async def achat(
        request: dict[str, Any], base_url: str, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()

    @exact
    def embeddings(request: dict[str, Any], base_url: str, call: Callable[[], Any]) -> Any:
        return call()

    @exact
    async def aembeddings(
        request: dict[str, Any], base_url: str, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()

    out = {
        "chat": chat,
        "achat": achat,
        "embeddings": embeddings,
        "aembeddings": aembeddings,
        "chat_semantic": None,
        "achat_semantic": None,
    }
    if threshold is not None:
        semantic = semantic_lookup(
            threshold,
            tenant=tenant,
            ttl=ttl,
            ignore=("call",),
            text_arg="text",
            cache=cache,
            version="openai-1",
        )

        @semantic
        def chat_semantic(
            text: str, request: dict[str, Any], base_url: str, call: Callable[[], Any]
        ) -> Any:
            return call()

        @semantic
        async def achat_semantic(
            text: str, request: dict[str, Any], base_url: str, call: Callable[[], Awaitable[Any]]
        ) -> Any:
            return await call()

        out["chat_semantic"] = chat_semantic
        out["achat_semantic"] = achat_semantic
    return out


def instrument(
    tenant: str = "pmm_llm",
    ttl: float | None = None,
    semantic_threshold: float | None = None,
    *,
    cache: Cache | None = None,
    cache_nondeterministic: bool = False,
) -> None:
    """Patch the openai client classes (calling it again replaces the settings)."""
    global _installed
    import importlib

    uninstrument()
    fns = _build(tenant, ttl, semantic_threshold, cache)
    originals = []
    for module_name, attr, kind, is_async in _PATCHES:
        module = importlib.import_module(module_name)
        owner = getattr(module, attr.split(".")[0])
        originals.append((owner, "create", owner.__dict__["create"]))
        wrapper = _make_wrapper(kind, is_async)
        wrapt.wrap_function_wrapper(module, attr, wrapper)
    _installed = _Installed(cache, cache_nondeterministic, originals=originals, **fns)


def uninstrument() -> None:
    """Restore the original client methods."""
    global _installed
    if _installed is None:
        return
    for owner, name, original in _installed.originals:
        setattr(owner, name, original)
    _installed = None


def _make_wrapper(kind: str, is_async: bool) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        state = _installed
        if state is None or args:
            return wrapped(*args, **kwargs)  # the SDK takes keyword arguments only
        if "messages" in kwargs and not isinstance(kwargs["messages"], list):
            kwargs = {**kwargs, "messages": list(kwargs["messages"])}  # may be an iterator
        request = _request(kwargs)
        base_url = str(instance._client.base_url)
        if kind == "chat" and not state.nondeterministic and not _deterministic(request):
            return wrapped(**kwargs)
        if kind == "chat" and request.get("stream"):
            return (_astream if is_async else _stream)(state, wrapped, kwargs, request, base_url)
        return (_acall if is_async else _call)(state, kind, wrapped, kwargs, request, base_url)

    return wrapper


def _result_type(kind: str) -> Any:
    if kind == "chat":
        from openai.types.chat import ChatCompletion

        return ChatCompletion
    from openai.types import CreateEmbeddingResponse

    return CreateEmbeddingResponse


def _route(
    state: _Installed, kind: str, is_async: bool, request: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    """Which decorated inner function serves this request, and its leading arguments."""
    if kind == "chat" and state.chat_semantic is not None:
        found = _last_user_text(request.get("messages", []))
        if found is not None:
            i, text = found
            messages = list(request["messages"])
            messages[i] = {**messages[i], "content": None}  # the text is keyed apart
            scoped = {**request, "messages": messages}
            fn = state.achat_semantic if is_async else state.chat_semantic
            return fn, (text, scoped)
    if kind == "chat":
        return (state.achat if is_async else state.chat), (request,)
    return (state.aembeddings if is_async else state.embeddings), (request,)


def _call(
    state: _Installed,
    kind: str,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    base_url: str,
) -> Any:
    fn, lead = _route(state, kind, False, request)
    result_type = _result_type(kind)
    try:
        data = fn(*lead, base_url, lambda: wrapped(**kwargs).model_dump(mode="json"))
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return wrapped(**kwargs)
    return result_type.model_validate(data)


async def _acall(
    state: _Installed,
    kind: str,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    base_url: str,
) -> Any:
    fn, lead = _route(state, kind, True, request)
    result_type = _result_type(kind)

    async def call() -> Any:
        return (await wrapped(**kwargs)).model_dump(mode="json")

    try:
        data = await fn(*lead, base_url, call)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return await wrapped(**kwargs)
    return result_type.model_validate(data)


def _pass_through_once(exc: Exception) -> None:
    default_cache().log_once(
        "openai-unencodable", logging.WARNING, "openai request not cached: %s", exc
    )


def _stream_key(
    state: _Installed, request: dict[str, Any], base_url: str, is_async: bool
) -> tuple[Cache, _Memo, Any, str, Any]:
    fn = state.achat if is_async else state.chat
    memo: _Memo = fn._memo()
    cache = memo.cache()
    call = memo.keys.bind((request, base_url, None), {}, False)
    assert call is not None  # the inner function's own signature always binds
    key, check = memo.key_of(cache, call)
    return cache, memo, call, key, check


def _stream(
    state: _Installed,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    base_url: str,
) -> Any:
    from openai.types.chat import ChatCompletionChunk

    try:
        cache, memo, call, key, check = _stream_key(state, request, base_url, False)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return wrapped(**kwargs)
    hit = cache.read(key, check, memo.counters)
    if hit is not MISSING:
        memo.counters.hits += 1
        return ReplayStream(hit, ChatCompletionChunk)
    memo.counters.misses += 1

    def store(chunks: Chunks) -> None:
        cache.write(
            memo.entry(cache, call, key, check, chunks, None), memo.ttl_for(cache), memo.counters
        )

    return RecordingStream(wrapped(**kwargs), store)


async def _astream(
    state: _Installed,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    base_url: str,
) -> Any:
    from openai.types.chat import ChatCompletionChunk

    try:
        cache, memo, call, key, check = _stream_key(state, request, base_url, True)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return await wrapped(**kwargs)
    hit = await cache.aread(key, check, memo.counters)
    if hit is not MISSING:
        memo.counters.hits += 1
        return AsyncReplayStream(hit, ChatCompletionChunk)
    memo.counters.misses += 1

    async def store(chunks: Chunks) -> None:
        await cache.awrite(
            memo.entry(cache, call, key, check, chunks, None), memo.ttl_for(cache), memo.counters
        )

    return AsyncRecordingStream(await wrapped(**kwargs), store)


def cache_info() -> dict[str, Any]:
    """Counters of the instrumented calls (chat, embeddings, semantic chat)."""
    state = _installed
    if state is None:
        return {}
    out = {
        "chat": state.chat.cache_info(),
        "achat": state.achat.cache_info(),
        "embeddings": state.embeddings.cache_info(),
        "aembeddings": state.aembeddings.cache_info(),
    }
    if state.chat_semantic is not None:
        out["chat_semantic"] = state.chat_semantic.cache_info()
        out["achat_semantic"] = state.achat_semantic.cache_info()
    return out
