"""One async client per running event loop, released when that loop ends.

Async network clients (redis.asyncio, httpx under AsyncOpenAI) hold connections bound to
the loop that opened them; `asyncio.run()` makes a new loop each time. Each loop gets its
own client, and an async generator parked on that loop closes it: `asyncio.run()`
finalises live async generators (`shutdown_asyncgens`) before it closes the loop, and the
generator's `finally` closes the client and forgets the loop.

A loop closed with `loop.close()` alone never finalises them. Such loops are found (and
their clients released synchronously with `abandon`) whenever a new loop asks for a
client and on `release_closed()`, so a process that runs 1,000 loops holds one client,
not 1,000 clients, loops and server connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

from . import _forksafe

T = TypeVar("T")
_ORPHANS: list[object] = []  # a forked child's inherited per-loop clients, kept unused


class LoopBound(Generic[T]):
    def __init__(
        self,
        factory: Callable[[], T],
        closer: Callable[[T], Awaitable[object]],
        abandon: Callable[[T], None] | None = None,
    ) -> None:
        self._factory = factory
        self._closer = closer
        self._abandon = abandon
        self._lock = threading.Lock()  # loops in several threads share this table
        # Strong references, removed explicitly: a weak key would never expire anyway,
        # since the client's transports refer back to their loop.
        self._held: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = {}
        _forksafe.track(self)

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        # The parent's loops do not run in the child, and their sockets are the
        # parent's too: forget the clients without closing anything (closing would be
        # harmless for the parent, but their transports warn when collected).
        self._lock = threading.Lock()
        _ORPHANS.extend(self._held.values())
        self._held = {}

    def __len__(self) -> int:
        return len(self._held)

    def current(self) -> T | None:
        """The running loop's client if it has one: no coroutine, for the hot path of
        every async read (`get` makes one when this is None)."""
        held = self._held.get(asyncio.get_running_loop())
        return None if held is None else held[0]

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is not None:
            return held[0]
        self.release_closed()
        client = self._factory()
        guard = self._guard(loop, client)
        await guard.__anext__()  # parks the generator on this loop
        with self._lock:
            self._held[loop] = (client, guard)
        return client

    async def _guard(
        self, loop: asyncio.AbstractEventLoop, client: T
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                ours = self._held.pop(loop, None) is not None
            if ours:  # not already released by release_closed()
                await self._closer(client)

    def release_closed(self) -> int:
        """Release the clients of loops that were closed without finalising them."""
        with self._lock:
            closed = [loop for loop in self._held if loop.is_closed()]
            dropped = [self._held.pop(loop) for loop in closed]
        for client, guard in dropped:
            if self._abandon is not None:
                self._abandon(client)
            # Finish the generator here (its entry is gone, so its finally awaits
            # nothing); otherwise its finaliser would try to schedule on the dead loop.
            step = guard.aclose()
            try:
                step.send(None)
            except StopIteration:
                pass
            except RuntimeError:  # a generator that never started; nothing to finish
                step.close()
        return len(dropped)

    async def close(self) -> None:
        """Close the running loop's client now (it is re-created on next use)."""
        held = self._held.get(asyncio.get_running_loop())
        if held is not None:
            await held[1].aclose()
