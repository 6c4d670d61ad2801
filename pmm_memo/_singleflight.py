"""In-process single-flight: concurrent identical misses run the function once.

The first caller for a key (the leader) runs it; callers arriving while it runs wait and
receive its result or its exception. Nothing is remembered afterwards: the cache is the
memory, this only collapses the stampede.

`completed` counts finished flights. A caller reads it before its cache read; if it has
moved by the time the caller leads, a flight finished in between (perhaps this key's,
whose result is now stored), so the leader reads the cache once more before computing.
Without that, a caller whose miss came just before another's write would compute again.

The async table is one per process, not per event loop: tasks on different loops (threads
each running a loop, `asyncio.run` per request in a thread pool) wait for one leader too,
through a thread-safe `concurrent.futures.Future` each waiter wraps on its own loop.

Asyncio: a waiter is shielded, so cancelling one waiter never cancels the shared work; if
the *leader* is cancelled, the waiters run the function themselves instead of inheriting
a cancellation that was not theirs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from . import _forksafe

T = TypeVar("T")
V = TypeVar("V")


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Flights(Generic[V]):
    """The table of flights in progress that both twins keep: key -> what its waiters
    wait on, behind one lock, with the count of finished flights."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, V] = {}
        self.completed = 0  # flights finished so far (see the module docstring)
        _forksafe.track(self)

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        # Flights in progress belong to the parent's threads, which the child does not
        # have: a child caller of the same key would wait for them forever.
        self._lock = threading.Lock()
        self._calls = {}

    def _finish(self, key: str) -> None:
        with self._lock:
            del self._calls[key]
            self.completed += 1


class SingleFlight(_Flights[_Call]):
    """Thread-level single-flight for sync functions."""

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
            self._finish(key)
            call.done.set()


class _LeaderCancelled(Exception):
    """Tells waiters the leader was cancelled, so they lead a fresh attempt themselves."""


class AsyncSingleFlight(_Flights[concurrent.futures.Future[Any]]):
    """Task-level single-flight for coroutine functions, across every event loop."""

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        while True:
            with self._lock:
                fut = self._calls.get(key)
                if fut is None:
                    fut = self._calls[key] = concurrent.futures.Future()
                    break
            try:
                # shield: cancelling this waiter must not cancel the shared future.
                result: T = await asyncio.shield(asyncio.wrap_future(fut))
            except _LeaderCancelled:
                continue  # the leader was cancelled: compete to lead a fresh attempt
            return result
        # The slot is freed before waiters are woken, so one woken by a cancelled
        # leader finds the table free and leads, rather than re-awaiting the old future.
        try:
            result = await fn()
        except asyncio.CancelledError:
            self._finish(key)
            fut.set_exception(_LeaderCancelled())
            raise
        except BaseException as exc:
            self._finish(key)
            fut.set_exception(exc)
            raise
        self._finish(key)
        fut.set_result(result)
        return result
