"""Cross-process single-flight locks on Redis (used by `_distributed`): SET NX PX to take
one, compare-and-delete to release it, so an owner never deletes a lock that expired and
was taken by another. A mixin of `RedisBackend`; `Cache` turns every failure into "no lock".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
import redis.asyncio

from ._redis_layout import _acommand, _command, _u

_UNLOCK_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)


class RedisLocks:
    """Lock commands, for `RedisBackend`."""

    client: redis.Redis

    if TYPE_CHECKING:

        async def aclient(self) -> redis.asyncio.Redis: ...

    def try_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        # SET NX GET: the reply is the holder's token (None if the key was free), so a
        # retried SET whose first attempt did land still knows the lock is its own.
        held = self.client.set(name, token, nx=True, px=ttl_ms, get=True)
        return held is None or _u(held) == token

    def unlock(self, name: str, token: str) -> None:
        # Compare-and-delete in one step: never delete a lock another owner now holds.
        _command(self.client, "EVAL", _UNLOCK_SCRIPT, 1, name, token)

    def lock_held(self, name: str) -> bool:
        return bool(self.client.exists(name))

    async def atry_lock(self, name: str, token: str, ttl_ms: int) -> bool:
        client = await self.aclient()
        held = await client.set(name, token, nx=True, px=ttl_ms, get=True)
        return held is None or _u(held) == token

    async def aunlock(self, name: str, token: str) -> None:
        client = await self.aclient()
        await _acommand(client, "EVAL", _UNLOCK_SCRIPT, 1, name, token)

    async def alock_held(self, name: str) -> bool:
        client = await self.aclient()
        return bool(await client.exists(name))
