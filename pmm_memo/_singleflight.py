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
    """A sync flight. `done` is made by the first waiter (under the table's lock): most
    flights have none, and an Event (a Condition and two locks) per miss was measurable."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done: threading.Event | None = None
        self.result: Any = None
        self.error: BaseException | None = None


class _Slot:
    """An async flight: the future its waiters wrap, made by the first waiter."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] | None = None


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

    def _finish(self, key: str) -> V:
        """Ends `key`'s flight; what its waiters wait on is final once it is out of the
        table (a waiter makes it under the same lock, before it could be removed)."""
        with self._lock:
            self.completed += 1
            return self._calls.pop(key)


class SingleFlight(_Flights[_Call]):
    """Thread-level single-flight for sync functions."""

    def do(self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
            elif call.done is None:
                call.done = threading.Event()
            done = call.done
        if done is not None:  # a waiter
            done.wait()
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
            waited = self._finish(key).done
            if waited is not None:
                waited.set()


class _LeaderCancelled(Exception):
    """Tells waiters the leader was cancelled, so they lead a fresh attempt themselves."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Marks a waiter's copy of the leader's exception as seen (the leader's caller and
    any waiter still waiting receive it themselves)."""
    if not future.cancelled():
        future.exception()


class AsyncSingleFlight(_Flights[_Slot]):
    """Task-level single-flight for coroutine functions, across every event loop."""

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        while True:
            with self._lock:
                slot = self._calls.get(key)
                if slot is None:
                    self._calls[key] = _Slot()
                    break
                if slot.future is None:
                    slot.future = concurrent.futures.Future()
                fut = slot.future
            wrapped = asyncio.wrap_future(fut)
            # A waiter cancelled first (a timeout, a closed request) leaves `wrapped` to
            # the leader's outcome alone: shield stops watching it, and asyncio would log
            # the leader's exception as "never retrieved" when it is collected.
            wrapped.add_done_callback(_retrieved)
            try:
                # shield: cancelling this waiter must not cancel the shared future.
                result: T = await asyncio.shield(wrapped)
            except _LeaderCancelled:
                continue  # the leader was cancelled: compete to lead a fresh attempt
            return result
        # The slot is freed before waiters are woken, so one woken by a cancelled
        # leader finds the table free and leads, rather than re-awaiting the old future.
        try:
            result = await fn()
        except asyncio.CancelledError:
            if (waited := self._finish(key).future) is not None:
                waited.set_exception(_LeaderCancelled())
            raise
        except BaseException as exc:
            if (waited := self._finish(key).future) is not None:
                waited.set_exception(exc)
            raise
        if (waited := self._finish(key).future) is not None:
            waited.set_result(result)
        return result
