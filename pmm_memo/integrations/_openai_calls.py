"""How an instrumented OpenAI request is served: routed to a decorated inner function,
read or recorded as a stream, or answered in the SDK's raw call shapes.

`openai.py` decides *whether* a request is cached; this module does the serving.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._binding import MISSING
from .._context import Mode, current_mode
from .._errors import UnencodableArgumentError
from .._memo import _Memo
from .._runtime import default_cache
from . import _raw
from ._streams import Chunks, arecord, is_answer, record

if TYPE_CHECKING:
    from .._cache import Cache
    from .openai import _Installed

logger = logging.getLogger("pmm_memo")

# (base URL, organization, project): see `openai.endpoint_of`.
Endpoint = tuple[str, str | None, str | None]


def _last_user_text(messages: list[Any]) -> tuple[int, str] | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return i, m["content"]
    return None


def _result_type(kind: str) -> Any:
    if kind == "chat":
        from openai.types.chat import ChatCompletion

        return ChatCompletion
    if kind == "responses":
        from openai.types.responses import Response

        return Response
    from openai.types import CreateEmbeddingResponse

    return CreateEmbeddingResponse


def _route(
    state: _Installed, kind: str, is_async: bool, request: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    """Which decorated inner function serves this request, and its leading arguments."""
    if kind != "embeddings" and state.chat_semantic is not None:
        # The text is keyed apart (replaced by None in the scope): chat messages or a
        # Responses `input` (a string, or a list of messages). Chat requests always have
        # `messages` and Responses requests `input`, so their scopes never meet.
        field = "messages" if kind == "chat" else "input"
        value = request.get(field)
        found: tuple[str, Any] | None = None
        if isinstance(value, str):
            found = value, None
        elif isinstance(value, list):
            last = _last_user_text(value)
            if last is not None:
                i, text = last
                items = list(value)
                items[i] = {**items[i], "content": None}
                found = text, items
        if found is not None:
            text, scoped_value = found
            fn = state.achat_semantic if is_async else state.chat_semantic
            return fn, (text, {**request, field: scoped_value})
    if kind == "chat":
        return (state.achat if is_async else state.chat), (request,)
    if kind == "responses":
        return (state.aresponses if is_async else state.responses), (request,)
    return (state.aembeddings if is_async else state.embeddings), (request,)


def serve(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    """Serve one sync request: a stream is recorded or replayed (`_stream`), anything
    else goes through its decorated inner function (`_call`). `raw`: the call came
    through `with_raw_response` / `with_streaming_response` and gets the SDK's response
    object (see `_raw`)."""
    if _is_stream(kind, request):
        return _stream(state, kind, instance, wrapped, kwargs, request, endpoint, raw)
    return _call(state, kind, instance, wrapped, kwargs, request, endpoint, raw)


async def aserve(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    """`serve` for the async client."""
    if _is_stream(kind, request):
        return await _astream(state, kind, instance, wrapped, kwargs, request, endpoint, raw)
    return await _acall(state, kind, instance, wrapped, kwargs, request, endpoint, raw)


def _is_stream(kind: str, request: dict[str, Any]) -> bool:
    return kind != "embeddings" and bool(request.get("stream"))


def _call(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    fn, lead = _route(state, kind, False, request)
    served: list[Any] = []  # the SDK's own object, when this call reached the API

    def call() -> Any:
        response = wrapped(**kwargs)
        served.append(response)
        return _raw.parsed_json(response) if raw else _raw.as_sent(response)

    try:
        data = fn(*lead, endpoint, call)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return wrapped(**kwargs)
    if served:
        return served[0]
    return _raw.hit(instance, kind, kwargs, data, False) if raw else _rebuild(kind, data)


async def _acall(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    fn, lead = _route(state, kind, True, request)
    served: list[Any] = []

    async def call() -> Any:
        response = await wrapped(**kwargs)
        served.append(response)
        return await _raw.aparsed_json(response) if raw else _raw.as_sent(response)

    try:
        data = await fn(*lead, endpoint, call)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return await wrapped(**kwargs)
    if served:
        return served[0]
    return await _raw.ahit(instance, kind, kwargs, data, False) if raw else _rebuild(kind, data)


def _pass_through_once(exc: Exception) -> None:
    default_cache().log_once(
        "openai-unencodable", logging.WARNING, "openai request not cached: %s", exc
    )


def _rebuild(kind: str, data: Any) -> Any:
    """A stored answer as the SDK builds a received one: `construct_type`, which (unlike
    `model_validate`) accepts what the API sent even where it strays from the SDK's
    declared types, so any answer the SDK accepted once is served again."""
    from openai._models import construct_type

    return construct_type(type_=_result_type(kind), value=data)


def _stream_key(
    state: _Installed, kind: str, request: dict[str, Any], endpoint: Endpoint, is_async: bool
) -> tuple[Cache, _Memo, Any, str, Any, bool] | None:
    """Cache, memo, bound call, key, check and whether to read, for a stream (which
    goes round the decorated function); None when a decorated call would not touch the
    cache either: the cache is off (CACHE_ENABLED=false), or inside `bypass()` or
    `disabled()`. Inside `refresh()` the stream is recorded again, nothing read."""
    if kind == "chat":
        fn = state.achat if is_async else state.chat
    else:
        fn = state.aresponses if is_async else state.responses
    memo: _Memo = fn._memo()
    cache = memo.cache()
    mode = current_mode()
    if not cache.enabled or mode is Mode.DISABLED or mode is Mode.BYPASS:
        return None
    call = memo.keys.bind((request, endpoint, None), {}, False)
    assert call is not None  # the inner function's own signature always binds
    key, check = memo.key_of(cache, call)
    return cache, memo, call, key, check, mode is Mode.NORMAL


def _stream(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    try:
        found = _stream_key(state, kind, request, endpoint, False)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return wrapped(**kwargs)
    if found is None:
        return wrapped(**kwargs)
    cache, memo, call, key, check, reads = found
    hit = cache.read(key, check, memo.counters) if reads else MISSING
    if hit is not MISSING:
        memo.counters.hits += 1
        # The SDK's own Stream over the stored events, as the API would have sent them:
        # helpers built on streams (`chat.completions.stream`, `.response`, `close()`)
        # see what they see on a miss.
        return _raw.hit(instance, kind, kwargs, hit, True)
    memo.counters.misses += 1

    whole = functools.partial(is_answer, kind, request)

    def store(chunks: Chunks) -> None:
        cache.write(
            memo.entry(cache, call, key, check, chunks, None), memo.ttl_for(cache), memo.counters
        )

    response = wrapped(**kwargs)
    if not raw:
        return record(response, whole, store)
    # The response keeps its parse: the caller's `.parse()` gets this very stream, now
    # recording (read through `.iter_lines()` it is not stored).
    record(response.parse(), whole, store)
    return response


async def _astream(
    state: _Installed,
    kind: str,
    instance: Any,
    wrapped: Callable[..., Any],
    kwargs: dict[str, Any],
    request: dict[str, Any],
    endpoint: Endpoint,
    raw: bool,
) -> Any:
    try:
        found = _stream_key(state, kind, request, endpoint, True)
    except UnencodableArgumentError as exc:
        _pass_through_once(exc)
        return await wrapped(**kwargs)
    if found is None:
        return await wrapped(**kwargs)
    cache, memo, call, key, check, reads = found
    hit = await cache.aread(key, check, memo.counters) if reads else MISSING
    if hit is not MISSING:
        memo.counters.hits += 1
        return await _raw.ahit(instance, kind, kwargs, hit, True)
    memo.counters.misses += 1

    whole = functools.partial(is_answer, kind, request)

    async def store(chunks: Chunks) -> None:
        await cache.awrite(
            memo.entry(cache, call, key, check, chunks, None), memo.ttl_for(cache), memo.counters
        )

    response = await wrapped(**kwargs)
    if not raw:
        return arecord(response, whole, store)
    parsed = response.parse()
    if inspect.isawaitable(parsed):  # AsyncAPIResponse.parse is a coroutine
        parsed = await parsed
    arecord(parsed, whole, store)
    return response
