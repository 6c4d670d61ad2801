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
and must never open the circuit breaker. The pool classes are in `_pools`.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from .._errors import ConfigError
from ._evidence import LoadAwareAsyncRetry, LocalSlownessError, probe_key
from ._pools import AsyncBlockingPool, BlockingPool, PoolTimeoutError

__all__ = [
    "AsyncBlockingPool",
    "BlockingPool",
    "LoadAwareAsyncRetry",
    "LocalSlownessError",
    "PoolTimeoutError",
]

SENTINEL_SCHEME = "redis+sentinel"
# Keys of the options dict that shape the pool rather than configure a connection.
# `failures`: a callable returning the circuit breaker's failure count; `replies`: one
# returning how many replies the cache has received (see BlockingPool, _evidence).
POOL_OPTIONS = ("max_connections", "pool_timeout", "failures", "replies")


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    opts = {k: v for k, v in options.items() if k not in POOL_OPTIONS}
    return opts, int(options.get("max_connections", 50)), float(options.get("pool_timeout", 10.0))


def _watch(pool: Any, options: dict[str, Any], retry: Any) -> Any:
    # The cache reads raw bytes (values, vectors, digests): a `?decode_responses=true`
    # in a URL shared with the application's own client applies to that client, not to
    # this one. Set before the pool's first connection is made.
    pool.connection_kwargs["decode_responses"] = False
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
