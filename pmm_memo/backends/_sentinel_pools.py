"""Sentinel-backed pools that wait for a free connection, like the plain-URL pools.

Why: `Sentinel.master_for` builds redis-py's `SentinelConnectionPool`, a non-blocking
pool: past CACHE_MAX_CONNECTIONS a caller gets `MaxConnectionsError` at once, so 150
threads on a healthy master ran their function instead of reading the cache. redis-py
has no blocking Sentinel pool, but `master_for` takes `connection_pool_class`: these
classes put `_pools`'s `BlockingPool` (wait up to CACHE_POOL_TIMEOUT, then
`PoolTimeoutError`, never a breaker failure) in front of the Sentinel pool (connections
that ask the sentinels where the master is, and follow a failover).

Method resolution: BlockingPool -> redis-py BlockingConnectionPool (queue, wait) ->
SentinelConnectionPool (master discovery, `owns_connection`) -> ConnectionPool. The
one thing to fix up is the connection class: BlockingConnectionPool passes its default
`Connection` on, which would otherwise replace the Sentinel-managed connections.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.sentinel
import redis.sentinel

from ._pools import AsyncBlockingPool, BlockingPool


def _managed(kwargs: dict[str, Any], plain: type, tls: type) -> dict[str, Any]:
    """`kwargs` with the Sentinel-managed connection class (TLS if `ssl=True`)."""
    tls_wanted = kwargs.pop("ssl", False)
    kwargs.setdefault("connection_class", tls if tls_wanted else plain)
    return kwargs


class BlockingSentinelPool(BlockingPool, redis.sentinel.SentinelConnectionPool):
    """A Sentinel master pool where callers beyond `max_connections` wait `timeout`."""

    free_path = False  # its connections find the master while connecting (see _pools)

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        kwargs = _managed(
            kwargs,
            redis.sentinel.SentinelManagedConnection,
            redis.sentinel.SentinelManagedSSLConnection,
        )
        super().__init__(service_name=service_name, sentinel_manager=sentinel_manager, **kwargs)


class AsyncBlockingSentinelPool(AsyncBlockingPool, redis.asyncio.sentinel.SentinelConnectionPool):
    """The asyncio twin of `BlockingSentinelPool`."""

    free_path = False

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        kwargs = _managed(
            kwargs,
            redis.asyncio.sentinel.SentinelManagedConnection,
            redis.asyncio.sentinel.SentinelManagedSSLConnection,
        )
        super().__init__(service_name=service_name, sentinel_manager=sentinel_manager, **kwargs)
