"""Single-flight across processes: concurrent identical misses call the function once.

The in-process single-flight (`_singleflight`) already collapses threads and tasks to one
leader per process; this collapses the leaders of all processes to one, with a short
Redis lock per key:

- `SET pmm_memo:lock:<key> <random token> NX PX <ttl>`: the winner reads the entry once
  more, then computes and stores. The second read is needed: the caller's first read
  may have missed just before another process stored the result, and its SET NX
  landed just after that process released the lock (a caller descheduled between the
  two, on a busy machine, called the function a second time). The expiry bounds how
  long a crashed owner can hold others back.
- The lock is released only by its owner (compare-and-delete script on the token), so
  an owner that overran its expiry cannot delete a lock that someone else now holds.
- Everyone else polls the entry with exponential backoff (10 ms .. 200 ms). If the lock
  disappears without a value (the owner raised, returned an `unless` result, or died)
  they compete for the lock again; after CACHE_LOCK_WAIT seconds they compute anyway.
- Every Redis error means "no lock": the call proceeds as without one (fail open).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._binding import MISSING
from ._stats import Counters

if TYPE_CHECKING:
    from ._cache import Cache

T = TypeVar("T")
LOCK_PREFIX = "pmm_memo:lock:"
_FIRST_DELAY = 0.01
_MAX_DELAY = 0.2


def _received(value: Any, counters: Counters) -> Any:
    """Another process's result, found in the cache while or after it held the lock."""
    counters.waited_hits += 1
    counters.hits += 1  # waited_hits is the part of hits that waited
    return value


def run_locked(
    cache: Cache, key: str, check: str | bytes, counters: Counters, work: Callable[[], T]
) -> T | Any:
    """Run `work` (compute + store) under the key's lock, or return the owner's result."""
    lock = LOCK_PREFIX + key
    deadline = time.monotonic() + cache.config.lock_wait
    while True:
        token = secrets.token_hex(16)
        if cache.try_lock(lock, token):
            try:
                value = cache.read(key, check, counters)
                if value is not MISSING:
                    return _received(value, counters)
                return work()
            finally:
                cache.unlock(lock, token)
        delay = _FIRST_DELAY
        while True:
            if time.monotonic() >= deadline:
                return work()  # waited long enough: the caller's answer matters more
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
            value = cache.read(key, check, counters)
            if value is not MISSING:
                return _received(value, counters)
            if not cache.lock_held(lock):
                break  # the owner finished without storing, or died: try to lead


async def arun_locked(
    cache: Cache, key: str, check: str | bytes, counters: Counters, work: Callable[[], Awaitable[T]]
) -> T | Any:
    lock = LOCK_PREFIX + key
    deadline = time.monotonic() + cache.config.lock_wait
    while True:
        token = secrets.token_hex(16)
        if await cache.atry_lock(lock, token):
            try:
                value = await cache.aread(key, check, counters)
                if value is not MISSING:
                    return _received(value, counters)
                return await work()
            finally:
                await cache.aunlock(lock, token)
        delay = _FIRST_DELAY
        while True:
            if time.monotonic() >= deadline:
                return await work()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
            value = await cache.aread(key, check, counters)
            if value is not MISSING:
                return _received(value, counters)
            if not await cache.alock_held(lock):
                break
