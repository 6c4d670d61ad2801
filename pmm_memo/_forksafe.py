"""Fork safety: everything a child inherits from its parent's threads stays usable.

`os.fork()` (gunicorn `--preload`, multiprocessing's fork start method, Celery's prefork
pool) copies only the forking thread. A lock another thread held at that instant stays
locked forever in the child, a single-flight slot whose leader was another thread never
completes, per-loop clients belong to loops that do not run there, and the statistics
flusher thread is gone. Objects that hold such state register here:

- before a fork, the parent takes each one's lock, so no other thread is half-way
  through changing the state it guards when memory is copied (each is a leaf lock:
  nothing else is acquired while holding it, so taking them in turn cannot deadlock);
- after the fork the parent releases them, and the child gives each object fresh locks
  and forgets what belonged to threads that do not exist there (`_after_fork_in_child`).
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Protocol


class ForkAware(Protocol):
    def _fork_lock(self) -> Any: ...  # the lock to hold across a fork (or None)
    def _after_fork_in_child(self) -> None: ...


_objects: weakref.WeakSet[Any] = weakref.WeakSet()
_held: list[Any] = []
_LOCK_WAIT = 5.0  # seconds; a lock held longer than this is re-created in the child anyway


def track(obj: ForkAware) -> None:
    _objects.add(obj)


def _before() -> None:
    for obj in list(_objects):
        lock = obj._fork_lock()
        if lock is not None and lock.acquire(timeout=_LOCK_WAIT):
            _held.append(lock)


def _after_in_parent() -> None:
    while _held:
        _held.pop().release()


def _after_in_child() -> None:
    _held.clear()  # the child replaces these locks rather than releasing them
    for obj in list(_objects):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )
