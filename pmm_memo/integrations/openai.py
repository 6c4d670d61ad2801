"""Cache every OpenAI chat completion, response and embedding call, with no edit to call sites.

    from pmm_memo.integrations.openai import instrument, uninstrument
    instrument(tenant="pmm_llm", ttl=3600, semantic_threshold=None)
    client.chat.completions.create(...)   # now cached, for OpenAI and AsyncOpenAI

- The key covers every request parameter (model, messages, temperature, top_p, seed,
  tools, response_format, max_tokens, extra_body, ...) and the client's base URL,
  organization and project; never the API key, headers or timeouts.
- `chat.completions.create` and `responses.create` (the Responses API) follow the same
  rules. Non-deterministic requests (temperature not explicitly 0 — the API's default is
  1 — or n > 1) are passed through unless `cache_nondeterministic=True`; so are Responses
  requests whose answer depends on server state that changes (`conversation`, a stored
  `prompt` without a `version`: its latest version) or that run as background jobs
  (`background=True`).
- Hits return the same typed objects (`ChatCompletion`, `Response`,
  `CreateEmbeddingResponse`); `with_raw_response` / `with_streaming_response` get the
  SDK's response objects (see `_raw`).
- `stream=True` is recorded while the caller consumes it and replayed as the SDK's own
  `Stream` (see `_streams`, `_raw`), so `chat.completions.stream()` / `responses.stream()`
  work on hits too.
- With `semantic_threshold`, non-streaming chat and Responses calls use semantic lookup on
  the last user message (or a string `input`), scoped by every other parameter (model,
  system prompt or instructions, history, ...).
- Requests that cannot be keyed (exotic argument types) are passed through, logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wrapt

from .._decorators import cached, semantic_lookup
from . import _raw
from ._openai_calls import Endpoint, aserve, serve

if TYPE_CHECKING:
    from .._cache import Cache

logger = logging.getLogger("pmm_memo")

# Part of every key. "openai-2": answers are stored under the API's field names (see
# `_raw.as_sent`); entries of "openai-1" lost the fields the SDK renames, never served.
VERSION = "openai-2"
# Transport options: they never change the answer, so they are not part of the key.
_NOT_KEYED = frozenset({"extra_headers", "timeout"})
_PATCHES = (
    ("openai.resources.chat.completions", "Completions.create", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.create", "chat", True),
    ("openai.resources.responses.responses", "Responses.create", "responses", False),
    ("openai.resources.responses.responses", "AsyncResponses.create", "responses", True),
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
    responses: Any
    aresponses: Any
    originals: list[tuple[Any, str, Any]]


_installed: _Installed | None = None


def _given(value: Any) -> bool:
    import openai

    return not isinstance(value, openai.NotGiven | openai.Omit)


def _request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in _NOT_KEYED and _given(v)}


# The headers that name the account a request runs under (the SDK sends the client's
# `organization` and `project` in them; `default_headers` and `extra_headers` override).
_ACCOUNT_HEADERS = ("openai-organization", "openai-project")


def endpoint_of(client: Any, extra_headers: Any) -> Endpoint:
    """Who answers a request, as part of its key: the client's base URL and the
    organization and project the request is sent under. An organization or project has
    its own fine-tuned models, files, vector stores and stored prompts (and may be
    refused another's): its answers are never served to another account's client.
    Public identifiers, not credentials (the API key stays out)."""
    found: dict[str, str | None] = dict.fromkeys(_ACCOUNT_HEADERS)
    for headers in (client.default_headers, extra_headers or {}):
        for name, value in headers.items():
            if str(name).lower() in found:  # header names are case-insensitive
                found[str(name).lower()] = value if isinstance(value, str) else None
    return str(client.base_url), found["openai-organization"], found["openai-project"]


def _deterministic(request: dict[str, Any]) -> bool:
    temperature = request.get("temperature", 1.0)
    return temperature == 0 and (request.get("n") or 1) <= 1


def _as_sent(request: dict[str, Any]) -> dict[str, Any]:
    """The request body the API receives: the SDK merges `extra_body` over the named
    parameters, so `temperature=0, extra_body={"temperature": 0.9}` samples at 0.9."""
    extra = request.get("extra_body")
    return {**request, **extra} if isinstance(extra, dict) else request


def _passes_through(kind: str, request: dict[str, Any], nondeterministic: bool) -> bool:
    """Requests whose answer a cache must not replay."""
    if kind == "embeddings":
        return False
    request = _as_sent(request)
    if kind == "responses" and (request.get("background") or "conversation" in request):
        return True  # a conversation's items change between calls; background = a job
    prompt = request.get("prompt")
    if kind == "responses" and isinstance(prompt, dict) and not prompt.get("version"):
        return True  # a stored prompt without a version is its latest: edited server-side
    return not nondeterministic and not _deterministic(request)


# A Responses answer in one of these states is no answer to replay: it failed, was
# cancelled, or is a job still running (a stream ending so is not stored either).
_NOT_ANSWERS = frozenset({"failed", "cancelled", "queued", "in_progress"})


def _not_an_answer(data: Any) -> bool:
    """`unless` of every inner function: a Response that is not (yet) an answer."""
    return isinstance(data, dict) and data.get("status") in _NOT_ANSWERS


def _build(
    tenant: str, ttl: float | None, threshold: float | None, cache: Cache | None
) -> dict[str, Any]:
    """The decorated inner functions: all caching logic is the decorators' own."""

    def exact(fn: Callable[..., Any]) -> Any:
        return cached(
            tenant=tenant,
            ttl=ttl,
            ignore=("call",),
            cache=cache,
            version=VERSION,
            unless=_not_an_answer,
        )(fn)

    @exact
    def chat(request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Any]) -> Any:
        return call()

    @exact
    async def achat(
        request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()

    @exact
    def embeddings(request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Any]) -> Any:
        return call()

    @exact
    async def aembeddings(
        request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()

    @exact
    def responses(request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Any]) -> Any:
        return call()

    @exact
    async def aresponses(
        request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        return await call()

    out = {
        "chat": chat,
        "achat": achat,
        "embeddings": embeddings,
        "aembeddings": aembeddings,
        "responses": responses,
        "aresponses": aresponses,
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
            version=VERSION,
            unless=_not_an_answer,
        )

        @semantic
        def chat_semantic(
            text: str, request: dict[str, Any], endpoint: Endpoint, call: Callable[[], Any]
        ) -> Any:
            return call()

        @semantic
        async def achat_semantic(
            text: str,
            request: dict[str, Any],
            endpoint: Endpoint,
            call: Callable[[], Awaitable[Any]],
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
    """Patch the openai client classes (calling it again replaces the settings).

    An endpoint the installed SDK does not have (the Responses API came in openai 1.66;
    the package accepts older releases) is skipped: `instrument()` raised
    ModuleNotFoundError there, after patching the chat classes with wrappers that then
    cached nothing."""
    global _installed
    import importlib

    uninstrument()
    fns = _build(tenant, ttl, semantic_threshold, cache)
    originals = []
    for module_name, attr, kind, is_async in _PATCHES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            logger.info("openai %s not instrumented: this SDK has no %s", kind, module_name)
            continue
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
        for name in ("messages", "input"):  # may be an iterator: read it once, here
            value = kwargs.get(name)
            if value is not None and not isinstance(value, list | str) and _given(value):
                kwargs = {**kwargs, name: list(value)}
        request = _request(kwargs)
        endpoint = endpoint_of(instance._client, kwargs.get("extra_headers"))
        if _passes_through(kind, request, state.nondeterministic):
            return wrapped(**kwargs)
        raw = _raw.raw_shape(kwargs) is not None
        serving = aserve if is_async else serve
        return serving(state, kind, instance, wrapped, kwargs, request, endpoint, raw)

    return wrapper


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
        "responses": state.responses.cache_info(),
        "aresponses": state.aresponses.cache_info(),
    }
    if state.chat_semantic is not None:
        out["chat_semantic"] = state.chat_semantic.cache_info()
        out["achat_semantic"] = state.achat_semantic.cache_info()
    return out
