"""The idle connections of a sync pool, handed to waiting threads in their order.

redis-py's blocking pool keeps its idle connections in a `queue.LifoQueue`, whose
`get` lets any thread take a connection that is there, queued or not. Under the GIL,
the thread that gives a connection back keeps running: its next call takes the
connection again (no system call in between) before the woken waiter is scheduled, so
threads busier than the pool's size kept the same few connections among themselves and
every waiting thread waited out CACHE_POOL_TIMEOUT, then went to the function (measured:
12 threads looping on a pool of 2, one PoolTimeoutError per thread beyond the pool's
size, each after the whole timeout).

`FairQueue` is the same LIFO of connections (the most recently used one first) with a
line of waiting threads: a thread takes a connection at once only when nobody waits;
otherwise it joins the end of the line, and each connection given back wakes the first
in line only (its own Condition on the queue's mutex: no thundering herd). The pool's
free path asks `waiting()` and leaves a connection given back to the line.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from queue import Empty, LifoQueue
from typing import Any


class FairQueue(LifoQueue[Any]):
    """A LifoQueue whose blocking `get` serves waiting threads first come, first served."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        # One Condition per waiting thread, oldest first (all on `self.mutex`).
        self.line: deque[threading.Condition] = deque()

    def waiting(self) -> bool:
        """Is a thread waiting for an item? (Read under `mutex` to act on it.)"""
        return bool(self.line)

    def _put(self, item: Any) -> None:
        """Called by `put` under `mutex`: the first thread in line is the one woken."""
        self.queue.append(item)
        if self.line:
            self.line[0].notify()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if not self.line and self.queue:  # nobody ahead: as LifoQueue
                item = self.queue.pop()
                self.not_full.notify()
                return item
            if not block or (timeout is not None and timeout <= 0):
                raise Empty
            turn = threading.Condition(self.mutex)
            self.line.append(turn)
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                while self.line[0] is not turn or not self.queue:
                    if deadline is None:
                        turn.wait()
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Empty
                    turn.wait(remaining)
                item = self.queue.pop()
                self.not_full.notify()
                return item
            finally:
                self.line.remove(turn)
                if self.line and self.queue:  # the next in line may take what is left
                    self.line[0].notify()
