"""The SDK's raw call shapes: `with_raw_response` and `with_streaming_response`.

The SDK marks them with the `X-Stainless-Raw-Response` request header ("true" for
`with_raw_response`, "stream" for `with_streaming_response`, "raw" for the newer raw
wrapper) and returns a `LegacyAPIResponse` / `APIResponse` instead of the parsed model.

- A miss calls the SDK and returns its own response object; the parsed body it yields
  is what is stored, so one entry serves every call shape.
- A hit builds the HTTP response the API would have sent (the stored JSON, or for
  `stream=True` the stored chunks as server-sent events, with an `x-pmm-memo-cache: hit`
  header) and hands it to the client's own `_process_response`, so the caller gets the
  SDK's type for that shape, with `.headers`, `.parse()`, `.iter_lines()`...
- A `stream=True` request in a raw shape: a miss records the stream the response's
  `.parse()` returns (the SDK keeps that parse, so the caller reads the very same
  stream); a hit replays the stored chunks.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from openai._constants import RAW_RESPONSE_HEADER

HIT_HEADER = "x-pmm-memo-cache"

_PATHS = {"chat": "/chat/completions", "responses": "/responses", "embeddings": "/embeddings"}


def raw_shape(kwargs: dict[str, Any]) -> str | None:
    """The raw call shape this request asks for, or None for a plain call."""
    headers = kwargs.get("extra_headers")
    if not headers:
        return None
    value = headers.get(RAW_RESPONSE_HEADER)
    return value if isinstance(value, str) else None


def _httpx() -> Any:
    """The HTTP library the installed SDK is built on (httpx2 in newer releases)."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def _types(kind: str, is_async: bool) -> tuple[Any, Any]:
    """(cast_to, stream_cls) the SDK's own `create` passes for this endpoint."""
    from openai import AsyncStream, Stream

    stream_type: Any = AsyncStream if is_async else Stream
    if kind == "chat":
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        return ChatCompletion, stream_type[ChatCompletionChunk]
    if kind == "responses":
        from openai.types.responses import Response, ResponseStreamEvent

        return Response, stream_type[ResponseStreamEvent]
    from openai.types import CreateEmbeddingResponse

    return CreateEmbeddingResponse, None


def _hit_response(
    instance: Any, kind: str, kwargs: dict[str, Any], stored: Any, stream: bool
) -> Any:
    httpx = _httpx()
    headers = {str(k): str(v) for k, v in (kwargs.get("extra_headers") or {}).items()}
    url = f"{str(instance._client.base_url).rstrip('/')}{_PATHS[kind]}"
    if stream:
        events = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in stored)
        body, content_type = events + b"data: [DONE]\n\n", "text/event-stream"
    else:
        body, content_type = json.dumps(stored).encode(), "application/json"
    return httpx.Response(
        200,
        headers={"content-type": content_type, HIT_HEADER: "hit"},
        content=body,
        request=httpx.Request("POST", url, headers=headers),
    )


def _process_args(
    instance: Any, kind: str, kwargs: dict[str, Any], stored: Any, stream: bool, is_async: bool
) -> dict[str, Any]:
    from openai._models import FinalRequestOptions

    cast_to, stream_cls = _types(kind, is_async)
    headers: dict[str, Any] = dict(kwargs.get("extra_headers") or {})
    options = FinalRequestOptions.construct(method="post", url=_PATHS[kind], headers=headers)
    return {
        "cast_to": cast_to,
        "options": options,
        "response": _hit_response(instance, kind, kwargs, stored, stream),
        "stream": stream,
        "stream_cls": stream_cls if stream else None,
    }


def hit(instance: Any, kind: str, kwargs: dict[str, Any], stored: Any, stream: bool) -> Any:
    """The SDK's response object for this call shape, built from a stored answer."""
    args = _process_args(instance, kind, kwargs, stored, stream, False)
    return instance._client._process_response(**args)


async def ahit(instance: Any, kind: str, kwargs: dict[str, Any], stored: Any, stream: bool) -> Any:
    args = _process_args(instance, kind, kwargs, stored, stream, True)
    return await instance._client._process_response(**args)


def as_sent(model: Any) -> Any:
    """The JSON the API sent for a model the SDK built, as stored and replayed.

    `to_dict` uses the API's field names and only the fields the API sent: the Python
    names (`model_dump`) differ where a name is reserved (`schema_` for `schema`,
    `async_` for `async`), and the SDK, rebuilding from them, dropped those fields.
    Without pydantic's serializer warnings: the SDK builds what the API sends leniently
    (an item type newer than the SDK included), and its serializer warned about it, an
    exception under `-W error`, after the API had answered."""
    return model.to_dict(mode="json", warnings=False)


def parsed_json(response: Any) -> Any:
    """The JSON to store for a raw-shape miss: the SDK's own parse of the body."""
    return as_sent(response.parse())


async def aparsed_json(response: Any) -> Any:
    parsed = response.parse()
    if hasattr(parsed, "__await__"):  # AsyncAPIResponse.parse is a coroutine
        parsed = await parsed
    return as_sent(parsed)
