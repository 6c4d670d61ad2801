"""One async client per running event loop, closed on that loop when it shuts down.

Async network clients (redis.asyncio, httpx under AsyncOpenAI) hold connections bound to
the loop that opened them; `asyncio.run()` makes a new loop each time. Each loop gets its
own client, and an async generator parked on that loop closes it: `asyncio.run()`
finalises live async generators (`shutdown_asyncgens`) before it closes the loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopBound(Generic[T]):
    def __init__(self, factory: Callable[[], T], closer: Callable[[T], Awaitable[object]]) -> None:
        self._factory = factory
        self._closer = closer
        self._held: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is not None:
            return held[0]
        client = self._factory()
        guard = self._guard(client)
        await guard.__anext__()  # parks the generator on this loop
        self._held[loop] = (client, guard)
        return client

    async def _guard(self, client: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self._closer(client)

    async def close(self) -> None:
        """Close the running loop's client now (it is re-created on next use)."""
        held = self._held.pop(asyncio.get_running_loop(), None)
        if held is not None:
            await held[1].aclose()
