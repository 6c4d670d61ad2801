"""Redis Cluster clients from a URL (redis-py's own `RedisCluster`, sync and asyncio).

    redis+cluster://[user:password@]host:port[,host:port...][/]
    rediss+cluster://...      (TLS to every node)

The listed nodes are only where discovery starts: the client asks them for the slot map
(CLUSTER SLOTS) and then talks to every primary directly, following MOVED/ASK while
slots migrate. A cluster has one database, so no `/db` is accepted.

Retries: redis-py's cluster client re-sends a command after a ConnectionError or
TimeoutError up to its retry count, re-reading the slot map in between. A frozen shard
would then cost several timeouts per call, so its own retries are set to none: the
backend's per-shard breaker decides when a shard is tried again (one timeout per
CACHE_BREAKER_INTERVAL). Redirections (MOVED/ASK) are not retries; they are followed
regardless (up to redis-py's 16 hops).

How these clients route RediSearch commands and react to MOVED, and why: `_cluster_routing`.
They need redis-py >= 8.1 (checked with the URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._errors import ConfigError
from ._connect import parse_hosts

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
MIN_REDIS_PY = (8, 1)  # the version tested; routing policies arrived in the 7.x series


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


_FORM = "redis+cluster://[user:password@]host:port[,host:port...]"


@dataclass(frozen=True)
class ClusterTarget:
    hosts: list[tuple[str, int]]
    tls: bool
    username: str | None
    password: str | None


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0] in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterTarget:
    """Parse and validate; ConfigError names the part that is wrong (never the password)."""
    scheme, sep, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES or not sep:
        raise ConfigError(f"CACHE_REDIS_URL: not a redis+cluster:// URL ({_FORM})")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ConfigError(f"CACHE_REDIS_URL: a cluster has one database; remove /{path} ({_FORM})")
    if "?" in netloc or "?" in path:
        raise ConfigError(f"CACHE_REDIS_URL: cluster URLs take no query options ({_FORM})")
    username, password, hosts = parse_hosts(netloc, "cluster node address", _FORM)
    if _version(redis.__version__) < MIN_REDIS_PY:
        raise ConfigError(
            f"CACHE_REDIS_URL: Redis Cluster support needs redis-py >= "
            f"{'.'.join(map(str, MIN_REDIS_PY))} (its cluster routing policies; this is "
            f"{redis.__version__}): pip install -U redis"
        )
    return ClusterTarget(hosts, scheme == "rediss+cluster", username, password)


def _kwargs(target: ClusterTarget, options: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        # The server decides what an uncovered slot means; the client must not refuse to
        # start (or to re-read the slot map) while one shard is down.
        "require_full_coverage": False,
        **options,
    }
    if target.tls:
        kw["ssl"] = True
    kw.pop("health_check_interval", None)  # not a cluster client option in asyncio
    # The single-server blocking pool's options (see _connect) have no cluster
    # counterpart; max_connections (per node) does.
    kw.pop("failures", None)
    kw.pop("replies", None)  # the Cache's reply counter (see _evidence.LocalSlowness)
    return kw


def sync_cluster_client(url: str, options: dict[str, Any]) -> redis.cluster.RedisCluster:
    """Connects at once (reads the slot map): raises redis.ConnectionError when no
    listed node answers."""
    from ._cluster_routing import IndexKeyedPolicies

    target = parse_cluster_url(url)
    nodes = [
        redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
        for h, p in target.hosts
    ]
    kw = _kwargs(target, options)
    kw.pop("pool_timeout", None)  # the backend's gate waits instead (see redis_cluster)
    try:
        return redis.cluster.RedisCluster(
            startup_nodes=nodes,
            retry=Retry(NoBackoff(), 0),
            policy_resolver=IndexKeyedPolicies(),
            **kw,
        )
    except redis.exceptions.RedisClusterException as exc:
        # "Redis Cluster cannot be connected": an outage, as for a single server.
        raise redis.ConnectionError(f"no cluster node answered: {exc}") from exc


def async_cluster_client(
    url: str, options: dict[str, Any], commands: dict[str, Any] | None = None
) -> redis.asyncio.cluster.RedisCluster:
    """Lazy: connects on its first command. `commands`: a command table another client
    read (`client.commands_parser.commands`), see `_cluster_routing.KnownCommands`."""
    from ._cluster_routing import AsyncIndexKeyedPolicies, KnownCommands

    target = parse_cluster_url(url)
    nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in target.hosts]
    kw = _kwargs(target, options)
    kw.pop("pool_timeout", None)  # the backend's gate waits instead (see redis_cluster)
    client = redis.asyncio.cluster.RedisCluster(
        startup_nodes=nodes,
        retry=AsyncRetry(NoBackoff(), 0),
        policy_resolver=AsyncIndexKeyedPolicies(),
        reinitialize_steps=0,  # see _cluster_routing
        **kw,
    )
    if commands:
        client.commands_parser = KnownCommands(commands)
    return client
