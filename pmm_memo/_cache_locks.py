"""Cross-process single-flight locks of `Cache` (see `_distributed`): every failure
means "no lock", so acquiring returns True (compute) and holding returns False; a lock
problem can delay nothing and break nothing.

A mixin of `Cache`; only the Redis backend has lock commands (see `supports_locks`).
"""

from __future__ import annotations

from typing import Any

from ._cache_failures import CacheFailures
from .backends._base import Backend


class CacheLocks(CacheFailures):
    """Lock calls through the breaker and the failure policy, for `Cache`."""

    backend: Backend

    @property
    def supports_locks(self) -> bool:
        return self.backend.name == "redis"

    @property
    def _locks(self) -> Any:
        return self.backend  # only RedisBackend has lock methods (see supports_locks)

    # Lock failures mean "no lock": acquiring returns True (compute), holding False.

    def try_lock(self, name: str, token: str) -> bool:
        """True when this caller should compute (it holds the lock, or Redis failed)."""
        ttl_ms = int(self.config.lock_ttl * 1000)
        return self._guarded("lock", lambda: bool(self._locks.try_lock(name, token, ttl_ms)), True)

    def unlock(self, name: str, token: str) -> None:
        self._guarded("unlock", lambda: self._locks.unlock(name, token), None)

    def lock_held(self, name: str) -> bool:
        return self._guarded("lock", lambda: bool(self._locks.lock_held(name)), False)

    async def atry_lock(self, name: str, token: str) -> bool:
        ttl_ms = int(self.config.lock_ttl * 1000)

        async def acquire() -> bool:
            return bool(await self._locks.atry_lock(name, token, ttl_ms))

        return await self._aguarded("lock", acquire, True)

    async def aunlock(self, name: str, token: str) -> None:
        await self._aguarded("unlock", lambda: self._locks.aunlock(name, token), None)

    async def alock_held(self, name: str) -> bool:
        async def held() -> bool:
            return bool(await self._locks.alock_held(name))

        return await self._aguarded("lock", held, False)
