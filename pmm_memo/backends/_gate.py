"""A bound on operations in flight, cheap when there is room: the cluster backend's stand-in
for one server's blocking connection pool.

redis-py's cluster clients raise MaxConnectionsError at once when a node's pool is full;
one server's pool (see `_connect`) makes callers wait up to CACHE_POOL_TIMEOUT instead.
The gate gives cluster callers that wait. It sits on every exact hit, so its free path
must cost next to nothing: `threading.BoundedSemaphore` (a Condition in pure Python,
~2-3 us a pass with its context manager) measurably widened the gap to a raw HMGET, and
`asyncio.wait_for` around a semaphore creates a Task and a timer per call even when the
semaphore is free. Here a free slot is one `deque.pop` and its return one
`deque.append` (both atomic in CPython); only callers that find no slot take the
Condition and wait.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time

import redis

from .. import _forksafe


def _full(timeout: float) -> redis.exceptions.MaxConnectionsError:
    return redis.exceptions.MaxConnectionsError(
        f"no free connection within {timeout}s (CACHE_MAX_CONNECTIONS)"
    )


class Gate:
    """At most `size` holders across threads; `acquire` waits up to `timeout` seconds,
    then raises redis-py's MaxConnectionsError (load in this process, not an outage)."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size = size
        self.timeout = timeout
        self._slots: collections.deque[None] = collections.deque([None] * size)
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        _forksafe.track(self)

    def _fork_lock(self) -> None:
        return None  # the free path takes no lock; the child starts with every slot free

    def _after_fork_in_child(self) -> None:
        # Slots held by the parent's other threads are never returned in the child.
        self._slots = collections.deque([None] * self.size)
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0

    def acquire(self) -> None:
        try:
            self._slots.pop()
            return
        except IndexError:
            pass
        deadline = time.monotonic() + self.timeout
        with self._cond:
            self._waiting += 1
            try:
                while True:
                    try:
                        self._slots.pop()
                        return
                    except IndexError:
                        pass
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _full(self.timeout)
                    self._cond.wait(left)
            finally:
                self._waiting -= 1

    def release(self) -> None:
        self._slots.append(None)
        # A waiter counts itself under the Condition before its last look at the slots,
        # so a release that reads 0 here happened before that look (and it sees the slot).
        if self._waiting:
            with self._cond:
                self._cond.notify()


async def acquire_async(sem: asyncio.Semaphore, timeout: float) -> None:
    """`sem.acquire()` with a timeout, without `wait_for`'s Task when a slot is free."""
    if not sem.locked():
        await sem.acquire()  # returns at once: a free slot and no one queued before us
        return
    try:
        await asyncio.wait_for(sem.acquire(), timeout)
    except TimeoutError:
        raise _full(timeout) from None
