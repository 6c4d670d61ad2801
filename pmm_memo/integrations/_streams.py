"""Recording OpenAI streams while the caller consumes them.

A miss streams as usual: every chunk reaches the caller as it arrives while its JSON is
recorded; the recording is stored only when the stream was consumed to its end (a
stream abandoned halfway, or one that raised, is not an answer). The caller keeps the
SDK's own `Stream` object: its iterator is replaced by a recording one, so
`isinstance(s, openai.Stream)`, `.response`, `close()` and the SDK's stream helpers
work unchanged. (A hit is replayed by the SDK itself, from the stored chunks sent as
server-sent events: see `_raw`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ._raw import as_sent

Chunks = list[dict[str, Any]]


def record(stream: Any, on_complete: Callable[[Chunks], None]) -> Any:
    """`stream` itself, now recording into `on_complete` once fully consumed."""
    inner: Iterator[Any] = stream._iterator

    def recording() -> Iterator[Any]:
        chunks: Chunks = []
        for chunk in inner:
            chunks.append(as_sent(chunk))
            yield chunk
        on_complete(chunks)

    stream._iterator = recording()
    return stream


def arecord(stream: Any, on_complete: Callable[[Chunks], Awaitable[None]]) -> Any:
    inner: AsyncIterator[Any] = stream._iterator

    async def recording() -> AsyncIterator[Any]:
        chunks: Chunks = []
        async for chunk in inner:
            chunks.append(as_sent(chunk))
            yield chunk
        await on_complete(chunks)

    stream._iterator = recording()
    return stream
