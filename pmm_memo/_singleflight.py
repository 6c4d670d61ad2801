"""In-process single-flight: concurrent identical misses run the function once.

The first caller for a key (the leader) runs it; callers arriving while it runs wait and
receive its result or its exception. Nothing is remembered afterwards: the cache is the
memory, this only collapses the stampede.

Asyncio: a waiter is shielded, so cancelling one waiter never cancels the shared work; if
the *leader* is cancelled, the waiters run the function themselves instead of inheriting
a cancellation that was not theirs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SingleFlight:
    """Thread-level single-flight for sync functions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}

    def do(self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[no-any-return]
        try:
            call.result = fn()
            return call.result  # type: ignore[no-any-return]
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()


class _LeaderCancelled(Exception):
    """Tells waiters the leader was cancelled, so they lead a fresh attempt themselves."""


class AsyncSingleFlight:
    """Task-level single-flight for coroutine functions (per event loop)."""

    def __init__(self) -> None:
        self._calls: dict[tuple[int, str], asyncio.Future[Any]] = {}

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        while True:
            fut = self._calls.get(slot)
            if fut is None:
                break
            try:
                return await asyncio.shield(fut)
            except _LeaderCancelled:
                continue  # the leader was cancelled: compete to lead a fresh attempt
        fut = loop.create_future()
        self._calls[slot] = fut
        try:
            result = await fn()
        except asyncio.CancelledError:
            fut.set_exception(_LeaderCancelled())
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            del self._calls[slot]
            # Retrieve the exception so an unawaited future does not log "never retrieved".
            if fut.done() and not fut.cancelled():
                fut.exception()
