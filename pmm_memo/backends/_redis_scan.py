"""The keys of one tenant, found by SCAN (never KEYS, which blocks the server): clearing
and counting a tenant's entries (of one function, if given) and entries per tenant.

Why its own module: key ownership is subtle (`cache:a:*` also matches tenant `a:b`'s
keys), and the cluster backend reuses it shard by shard. A mixin of `RedisBackend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import redis

from ._entry_meta import unpack_meta
from ._limits import wrong_type
from ._redis_layout import _HEX32, _b, _u, glob_escape


def _function_of(reply: object) -> str | None:
    """The function tag of an HMGET of `meta` and `fn`: from `meta`, or from the `fn`
    field of an entry of the previous format (never served now, but still cleared with
    its function, as the previous version would clear it)."""
    if not isinstance(reply, list):
        return None  # WRONGTYPE: another program's key
    meta = unpack_meta(reply[0])
    if meta is not None:
        return _u(meta.fn)
    return None if reply[1] is None else _u(reply[1])


class RedisScan:
    """SCAN-based tenant bookkeeping, for `RedisBackend`."""

    client: redis.Redis
    key_prefix: str
    batch_size: int

    def _tenant_pattern(self, tenant: str) -> str:
        return glob_escape(self.key_prefix + tenant + ":") + "*"

    def _own(self, keys: Iterable[bytes], tenant: str) -> list[bytes]:
        # `cache:a:*` also matches tenant `a:b`'s `cache:a:b:<hash>`; only keys whose rest
        # is exactly one 32-hex hash belong to tenant `a`.
        head = len(_b(self.key_prefix + tenant + ":"))
        return [k for k in keys if len(k) == head + 32 and _HEX32.fullmatch(k, head)]

    def _batches(self, tenant: str) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=self._tenant_pattern(tenant), count=self.batch_size):
            batch.append(key)
            if len(batch) >= self.batch_size:
                yield self._own(batch, tenant)
                batch = []
        if batch:
            yield self._own(batch, tenant)

    def _of_function(self, keys: list[bytes], fn: str | None) -> list[bytes]:
        if fn is None or not keys:
            return keys
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.hmget(k, "meta", "fn")
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:  # WRONGTYPE: another program's key, of no function of ours
            if isinstance(reply, Exception) and not wrong_type(reply):
                raise reply
        return [k for k, r in zip(keys, replies, strict=True) if _function_of(r) == fn]

    def clear(
        self, tenant: str, fn: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """UNLINK the tenant's entries (of one function, if given) in SCAN batches of
        CACHE_BATCH_SIZE; `progress` receives the running count after each batch."""
        removed = 0
        for batch in self._batches(tenant):
            keys = self._of_function(batch, fn)
            if keys:
                removed += int(self.client.unlink(*keys))
                if progress is not None:
                    progress(removed)
        return removed

    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None:
        if tenant is None:
            return None
        return sum(len(self._of_function(b, fn)) for b in self._batches(tenant))

    def tenants(self) -> dict[str, int]:
        """Entries per tenant, by scanning the key prefix (for stats and the CLI)."""
        counts: dict[str, int] = {}
        head = len(_b(self.key_prefix))
        for key in self.client.scan_iter(
            match=glob_escape(self.key_prefix) + "*", count=max(self.batch_size, 1000)
        ):
            rest = key[head:]
            if len(rest) > 33 and rest[-33:-32] == b":" and _HEX32.fullmatch(rest, len(rest) - 32):
                tenant = _u(rest[:-33])
                counts[tenant] = counts.get(tenant, 0) + 1
        return counts
