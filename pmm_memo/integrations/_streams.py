"""Recording OpenAI streams while the caller consumes them.

A miss streams as usual: every chunk reaches the caller as it arrives while its JSON is
recorded; the recording is stored only when the stream was consumed to its end and holds
a whole answer (`is_answer`). A stream abandoned halfway, or one that raised, is not an
answer; nor is one that simply stopped: the SDK ends its iteration quietly when a
connection closes before the end (no `[DONE]`, no `response.completed`), and a Responses
stream reports a failure as an event (`response.failed`, `error`), not an exception.
The caller keeps the SDK's own `Stream` object: its iterator is replaced by a recording one, so
`isinstance(s, openai.Stream)`, `.response`, `close()` and the SDK's stream helpers
work unchanged. (A hit is replayed by the SDK itself, from the stored chunks sent as
server-sent events: see `_raw`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ._raw import as_sent

Chunks = list[dict[str, Any]]


# The last event of a Responses stream that carries a whole answer (`incomplete`: the
# answer stopped at max_output_tokens or by the content filter, as it will again).
_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete"})


def is_answer(kind: str, request: dict[str, Any], chunks: Chunks) -> bool:
    """Whether recorded chunks are a whole answer: every chat choice finished (and the
    usage chunk came, when `stream_options` asked for it), or a Responses stream ended
    with its final event."""
    if kind == "responses":
        return bool(chunks) and chunks[-1].get("type") in _RESPONSE_ENDS
    finished: dict[Any, bool] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            index = choice.get("index")
            finished[index] = finished.get(index, False) or bool(choice.get("finish_reason"))
    options = request.get("stream_options")
    usage = not (isinstance(options, dict) and options.get("include_usage"))
    usage = usage or bool(chunks and chunks[-1].get("usage"))  # it comes last, when asked
    return usage and bool(finished) and all(finished.values())


def record(
    stream: Any, whole: Callable[[Chunks], bool], on_complete: Callable[[Chunks], None]
) -> Any:
    """`stream` itself, now recording into `on_complete` once fully consumed, if what
    it recorded passes `whole` (see `is_answer`)."""
    inner: Iterator[Any] = stream._iterator

    def recording() -> Iterator[Any]:
        chunks: Chunks = []
        for chunk in inner:
            chunks.append(as_sent(chunk))
            yield chunk
        if whole(chunks):
            on_complete(chunks)

    stream._iterator = recording()
    return stream


def arecord(
    stream: Any, whole: Callable[[Chunks], bool], on_complete: Callable[[Chunks], Awaitable[None]]
) -> Any:
    inner: AsyncIterator[Any] = stream._iterator

    async def recording() -> AsyncIterator[Any]:
        chunks: Chunks = []
        async for chunk in inner:
            chunks.append(as_sent(chunk))
            yield chunk
        if whole(chunks):
            await on_complete(chunks)

    stream._iterator = recording()
    return stream
