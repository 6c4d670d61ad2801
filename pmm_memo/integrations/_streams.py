"""Recording and replaying OpenAI streams.

A miss streams as usual: every chunk reaches the caller as it arrives while its JSON is
recorded; the recording is stored only when the stream was consumed to its end (a
stream abandoned halfway is not an answer). A hit replays the stored chunks as the same
typed chunk objects, with the iterator/context-manager surface of `openai.Stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

Chunks = list[dict[str, Any]]


class RecordingStream:
    def __init__(self, stream: Any, on_complete: Callable[[Chunks], None]) -> None:
        self._stream = stream
        self._on_complete = on_complete
        self._iter = self._record()

    def _record(self) -> Iterator[Any]:
        chunks: Chunks = []
        for chunk in self._stream:
            chunks.append(chunk.model_dump(mode="json"))
            yield chunk
        self._on_complete(chunks)

    def __iter__(self) -> Iterator[Any]:
        return self._iter

    def __next__(self) -> Any:
        return next(self._iter)

    def __enter__(self) -> RecordingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # e.g. `.response` of the real stream


class ReplayStream:
    def __init__(self, chunks: Chunks, chunk_type: Any) -> None:
        self._iter = (chunk_type.model_validate(c) for c in chunks)
        self.response = None  # no HTTP response behind a replay

    def __iter__(self) -> Iterator[Any]:
        return self._iter

    def __next__(self) -> Any:
        return next(self._iter)

    def __enter__(self) -> ReplayStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._iter.close()


class AsyncRecordingStream:
    def __init__(self, stream: Any, on_complete: Callable[[Chunks], Awaitable[None]]) -> None:
        self._stream = stream
        self._on_complete = on_complete
        self._iter = self._record()

    async def _record(self) -> AsyncIterator[Any]:
        chunks: Chunks = []
        async for chunk in self._stream:
            chunks.append(chunk.model_dump(mode="json"))
            yield chunk
        await self._on_complete(chunks)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iter

    async def __anext__(self) -> Any:
        return await self._iter.__anext__()

    async def __aenter__(self) -> AsyncRecordingStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncReplayStream:
    def __init__(self, chunks: Chunks, chunk_type: Any) -> None:
        self._chunks = iter(chunks)
        self._type = chunk_type
        self.response = None

    def __aiter__(self) -> AsyncReplayStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return self._type.model_validate(next(self._chunks))
        except StopIteration:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AsyncReplayStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._chunks = iter(())
