"""Redis clients from a URL: plain (`redis://`, `rediss://`, `unix://`) or Sentinel.

Sentinel URLs follow the convention other Python tools use, since redis-py parses none:

    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]

The credentials are the master's; the sentinels are asked where the master is, and the
client follows failovers (redis-py's `master_for`, with the blocking pools of
`_sentinel_pools`).

Connection pools are built here, in one place, for every kind of client. Plain URLs use
redis-py's `BlockingConnectionPool`: when all CACHE_MAX_CONNECTIONS connections are busy
a caller *waits* (up to CACHE_POOL_TIMEOUT) for one to come back instead of getting
`MaxConnectionsError`. A wait that runs out raises `PoolTimeoutError`, which is not a
`ConnectionError`: many concurrent callers on a healthy server are load, not an outage,
and must never open the circuit breaker.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from .._errors import ConfigError
from ._evidence import (
    LoadAwareAsyncRetry,
    LocalSlowness,
    LocalSlownessError,
    ProbeKey,
    probe_key,
)

__all__ = ["LoadAwareAsyncRetry", "LocalSlownessError"]

T = TypeVar("T")

SENTINEL_SCHEME = "redis+sentinel"
# Keys of the options dict that shape the pool rather than configure a connection.
# `failures`: a callable returning the circuit breaker's failure count; `replies`: one
# returning how many replies the cache has received (see BlockingPool, _evidence).
POOL_OPTIONS = ("max_connections", "pool_timeout", "failures", "replies")


class PoolTimeoutError(redis.RedisError):
    """No pooled connection came free within CACHE_POOL_TIMEOUT (this process is busy).

    Deliberately not a `redis.ConnectionError`: it says nothing about the server, so it
    neither opens the breaker nor triggers the ConnectionError retry."""


def _pool_timeout(limit: int, wait: float) -> PoolTimeoutError:
    return PoolTimeoutError(
        f"all {limit} pooled connections stayed busy for {wait:g}s "
        f"(raise CACHE_MAX_CONNECTIONS or CACHE_POOL_TIMEOUT)"
    )


_FAILED_WHILE_WAITING = "the server failed while this call waited for a pooled connection"
_TOO_SLOW = (
    "connects kept timing out while the server answered a probe: this process was too "
    "slow (raise CACHE_CONNECT_TIMEOUT or CACHE_POOL_TIMEOUT)"
)


def _no_failures() -> int:
    return 0


class BlockingPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool, with "no connection came free" as its own error.

    A frozen server holds every connection for a socket timeout; without a check, each
    queued caller would then take its turn at a timeout of its own (queue length x
    timeout in all). `failures` (the breaker's count) is read before and after the wait:
    if it moved, the caller gives up at once, like calls that meet the open breaker.
    A connect that times out is tried again, until CACHE_POOL_TIMEOUT, while the server
    is shown to answer (`_evidence.LocalSlowness`): a burst of connects on a starved
    process is load; a frozen, blackholed or dead server still fails the first time."""

    failures: Callable[[], int] = staticmethod(_no_failures)
    replies: Callable[[], int] = staticmethod(_no_failures)
    probe: ProbeKey | None = None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        before = self.failures()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while True:
            evidence = LocalSlowness(self.replies, self.probe)
            try:
                connection = self._get(*args, **kwargs)
                break
            except redis.TimeoutError:
                if self.failures() != before or not evidence.local():
                    raise
                if time.monotonic() >= deadline:
                    raise LocalSlownessError(_TOO_SLOW) from None
        if self.failures() != before:
            self.release(connection)  # type: ignore[no-untyped-call]
            raise PoolTimeoutError(_FAILED_WHILE_WAITING)
        return connection

    def _get(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            # redis-py raises ConnectionError("No connection available.") from inside
            # `except queue.Empty`; a real connection failure has another context.
            if isinstance(exc.__context__, queue.Empty):
                raise _pool_timeout(self.max_connections, self.timeout) from None
            raise


class AsyncBlockingPool(redis.asyncio.BlockingConnectionPool):
    failures: Callable[[], int] = staticmethod(_no_failures)
    replies: Callable[[], int] = staticmethod(_no_failures)
    probe: ProbeKey | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        before = self.failures()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while True:
            evidence = LocalSlowness(self.replies, self.probe)
            try:
                connection = await self._get(*args, **kwargs)
                break
            except redis.TimeoutError:
                if self.failures() != before or not await evidence.alocal():
                    raise
                if time.monotonic() >= deadline:
                    raise LocalSlownessError(_TOO_SLOW) from None
        if self.failures() != before:
            await self.release(connection)
            raise PoolTimeoutError(_FAILED_WHILE_WAITING)
        return connection

    async def _get(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            # Raised `from` the asyncio.TimeoutError of the wait for a free connection;
            # a connect timeout is a redis.TimeoutError instead.
            if isinstance(exc.__cause__, TimeoutError) and not isinstance(
                exc.__cause__, redis.RedisError
            ):
                raise _pool_timeout(self.max_connections, self.timeout or 0.0) from None
            raise


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    opts = {k: v for k, v in options.items() if k not in POOL_OPTIONS}
    return opts, int(options.get("max_connections", 50)), float(options.get("pool_timeout", 10.0))


def _watch(pool: Any, options: dict[str, Any], retry: Any) -> Any:
    for name in ("failures", "replies"):
        if options.get(name) is not None:
            setattr(pool, name, options[name])
    pool.probe = probe_key(pool)
    if isinstance(retry, LoadAwareAsyncRetry):
        retry.probe, retry.budget = pool.probe, float(pool.timeout or 0.0)
        kw = pool.connection_kwargs
        retry.timeout = max(
            float(kw.get("socket_timeout") or 0.0), float(kw.get("socket_connect_timeout") or 0.0)
        )
    return pool


@dataclass(frozen=True)
class SentinelTarget:
    hosts: list[tuple[str, int]]
    service: str
    db: int
    username: str | None
    password: str | None


def parse_hosts(
    netloc: str, what: str, form: str
) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """`[user:password@]host:port[,host:port...]` -> (username, password, [(host, port)]).

    Shared by the multi-host schemes (Sentinel, cluster), which redis-py does not parse.
    Raises ConfigError naming the bad address (never the password) and the URL's `form`.
    """
    userinfo, at, hostlist = netloc.rpartition("@")
    if not at:
        hostlist, userinfo = netloc, ""
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")  # [::1]:7000
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"CACHE_REDIS_URL: {what} {item!r} must be host:port ({form})")
        hosts.append((host, int(port)))
    return username, password, hosts


def parse_sentinel_url(url: str) -> SentinelTarget:
    head, sep, rest = url.partition("://")
    if head != SENTINEL_SCHEME or not sep:
        raise ConfigError(f"not a {SENTINEL_SCHEME}:// URL")
    netloc, _, path = rest.partition("/")
    username, password, hosts = parse_hosts(
        netloc,
        "sentinel address",
        f"{SENTINEL_SCHEME}://host:port[,host:port]/service_name[/db]",
    )
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ConfigError(
            f"CACHE_REDIS_URL: a {SENTINEL_SCHEME}:// URL needs the service name "
            f"({SENTINEL_SCHEME}://host:port/service_name[/db])"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ConfigError(f"CACHE_REDIS_URL: expected /service_name[/db], got /{path}")
    return SentinelTarget(
        hosts, parts[0], int(parts[1]) if len(parts) == 2 else 0, username, password
    )


def sync_client(url: str, options: dict[str, Any], retry: Any) -> redis.Redis:
    """A client on a pool of at most `max_connections` (callers wait `pool_timeout`)."""
    given = options
    options, limit, wait = _split(options)
    if not url.startswith(SENTINEL_SCHEME + "://"):
        # With a pool given, redis-py takes the retry policy from the pool's connections.
        pool = _watch(
            BlockingPool.from_url(url, max_connections=limit, timeout=wait, retry=retry, **options),
            given,
            retry,
        )
        plain = redis.Redis(connection_pool=pool)
        plain.auto_close_connection_pool = True  # close() releases the pool's sockets
        return plain
    # Sentinel pools wait for a free connection too (see _sentinel_pools).
    from ._sentinel_pools import BlockingSentinelPool

    client: redis.Redis = _sentinel_master(
        redis.sentinel.Sentinel, BlockingSentinelPool, url, given, retry
    )
    return client


def _sentinel_master(
    sentinel_class: Any, pool_class: Any, url: str, given: dict[str, Any], retry: Any
) -> Any:
    """The master of a `redis+sentinel://` URL through `sentinel_class` (redis-py's sync or
    asyncio Sentinel), on a `pool_class` pool that waits for a free connection."""
    options, limit, wait = _split(given)
    t = parse_sentinel_url(url)
    sentinel = sentinel_class(
        t.hosts,
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
    )
    client = sentinel.master_for(
        t.service,
        connection_pool_class=pool_class,
        db=t.db,
        username=t.username,
        password=t.password,
        retry=retry,
        max_connections=limit,
        timeout=wait,
        **options,
    )
    _watch(client.connection_pool, given, retry)
    return client


def async_client(url: str, options: dict[str, Any], retry: Any) -> redis.asyncio.Redis:
    given = options
    options, limit, wait = _split(options)
    if not url.startswith(SENTINEL_SCHEME + "://"):
        pool = _watch(
            AsyncBlockingPool.from_url(
                url, max_connections=limit, timeout=wait, retry=retry, **options
            ),
            given,
            retry,
        )
        aplain = redis.asyncio.Redis(connection_pool=pool)
        aplain.auto_close_connection_pool = True
        return aplain
    from ._sentinel_pools import AsyncBlockingSentinelPool

    client: redis.asyncio.Redis = _sentinel_master(
        redis.asyncio.sentinel.Sentinel, AsyncBlockingSentinelPool, url, given, retry
    )
    return client


def close_client(client: redis.Redis) -> None:
    """Close a client, and for Sentinel its connections to the sentinels too."""
    client.close()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        sentinel.close()


async def aclose_client(client: redis.asyncio.Redis) -> None:
    await client.aclose()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def abandon_client(client: redis.asyncio.Redis) -> None:
    """Release the sockets of an async client whose event loop is already closed.

    `loop.close()` without `asyncio.run()` never finalises the loop's async generators,
    so the client was never closed, and nothing can be awaited on a closed loop. The
    sockets are closed directly: the server drops the connections now, and neither
    redis-py nor asyncio finds an "unclosed" transport to warn about when the dead loop
    is collected. (asyncio and redis-py offer no public way to do this; every attribute
    is looked up defensively, and a transport of another kind is only shut down.)
    """
    pool = client.connection_pool
    connections = [
        *getattr(pool, "_available_connections", ()),
        *getattr(pool, "_in_use_connections", ()),
    ]
    for conn in connections:
        writer = getattr(conn, "_writer", None)
        transport = getattr(writer, "transport", None)
        if transport is not None:
            with contextlib.suppress(RuntimeError):  # "Event loop is closed", after marking
                transport.close()  # it closing, so StreamWriter.__del__ stays quiet
            sock = getattr(transport, "_sock", None)
            if sock is not None:  # asyncio's selector transports
                transport._sock = None  # its __del__ would warn about an unclosed socket
                sock.close()
            else:
                raw = transport.get_extra_info("socket")
                if raw is not None:
                    with contextlib.suppress(OSError):
                        raw.shutdown(socket.SHUT_RDWR)
        conn._reader = conn._writer = None  # redis-py's __del__ warns while they are set
