"""Redis clients from a URL: plain (`redis://`, `rediss://`, `unix://`) or Sentinel.

Sentinel URLs follow the convention other Python tools use, since redis-py parses none:

    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]

The credentials are the master's; the sentinels are asked where the master is, and the
client follows failovers (redis-py's `master_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from .._errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelTarget:
    hosts: list[tuple[str, int]]
    service: str
    db: int
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelTarget:
    head, sep, rest = url.partition("://")
    if head != SENTINEL_SCHEME or not sep:
        raise ConfigError(f"not a {SENTINEL_SCHEME}:// URL")
    netloc, _, path = rest.partition("/")
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
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                f"CACHE_REDIS_URL: sentinel address {item!r} must be host:port "
                f"({SENTINEL_SCHEME}://host:port[,host:port]/service_name[/db])"
            )
        hosts.append((host, int(port)))
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
    if not url.startswith(SENTINEL_SCHEME + "://"):
        return redis.Redis.from_url(url, retry=retry, **options)
    t = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        t.hosts,
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        t.service, db=t.db, username=t.username, password=t.password, retry=retry, **options
    )
    return client


def async_client(url: str, options: dict[str, Any], retry: Any) -> redis.asyncio.Redis:
    if not url.startswith(SENTINEL_SCHEME + "://"):
        return redis.asyncio.Redis.from_url(url, retry=retry, **options)
    t = parse_sentinel_url(url)
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        t.hosts,
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
    )
    client: redis.asyncio.Redis = sentinel.master_for(
        t.service, db=t.db, username=t.username, password=t.password, retry=retry, **options
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
