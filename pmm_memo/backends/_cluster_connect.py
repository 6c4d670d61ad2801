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

Routing of RediSearch commands: redis-py's built-in command policies send FT.SEARCH,
FT.INFO, FT.CREATE... to a random primary, as for a cluster whose search coordinator
fans a query out (Redis Enterprise, Redis 8 with the coordinator). Open-source
RediSearch has no coordinator and declares the index name as the command's key (COMMAND
INFO FT.SEARCH: first key 1), so a random primary answers MOVED two times in three. The
clients here route those commands by the index name's slot instead (`INDEX_COMMANDS`):
one round trip, no redirection.

Topology refresh after MOVED (asyncio client): redis-py's asyncio cluster client calls
its own `aclose()` on every `reinitialize_steps`-th MOVED reply (default 5), which
disconnects every connection of every node, including ones other tasks on the same
loop are reading a reply from at that moment: they fail with "Connection closed by
server" (a healthy shard would then look down and its breaker would open). With
`reinitialize_steps=0` each MOVED instead patches the slot it names (redis-py
`NodesManager.move_slot`) and the command is re-sent there; the full slot map is
re-read after a connection error, as before. That is how the flake behind issue 10's
broad-suite parametrisation arose: FT.SEARCH sent to a random primary produced a
MOVED on most calls, so a semantic lookup closed its neighbours' connections every few
calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio.cluster
import redis.cluster
from redis._parsers.commands import (
    AsyncCommandsParser,
    CommandPolicies,
    PolicyRecords,
    RequestPolicy,
    ResponsePolicy,
)
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.policies import (
    STATIC_POLICIES,
    AsyncBasePolicyResolver,
    AsyncPolicyResolver,
    BasePolicyResolver,
    PolicyResolver,
)
from redis.retry import Retry

from .._errors import ConfigError
from ._connect import parse_hosts

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
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
    kw.pop("replies", None)  # the Cache's reply counter (see _connect.LocalSlowness)
    return kw


# RediSearch commands whose first argument is an index name (the command's key).
INDEX_COMMANDS = (
    "search",
    "aggregate",
    "info",
    "create",
    "alter",
    "dropindex",
    "explain",
    "explaincli",
    "profile",
    "tagvals",
    "spellcheck",
    "syndump",
    "synupdate",
)
_KEYED = CommandPolicies(RequestPolicy.DEFAULT_KEYED, ResponsePolicy.DEFAULT_KEYED)
POLICIES: PolicyRecords = {
    **STATIC_POLICIES,
    "ft": {**STATIC_POLICIES["ft"], **dict.fromkeys(INDEX_COMMANDS, _KEYED)},
}


class IndexKeyedPolicies(BasePolicyResolver):
    """redis-py's static command policies, with FT.* index commands routed by key."""

    def __init__(self, fallback: PolicyResolver | None = None) -> None:
        super().__init__(POLICIES, fallback)

    def with_fallback(self, fallback: PolicyResolver) -> PolicyResolver:
        return IndexKeyedPolicies(fallback)


class AsyncIndexKeyedPolicies(AsyncBasePolicyResolver):
    """`IndexKeyedPolicies` for the asyncio client."""

    def __init__(self, fallback: AsyncPolicyResolver | None = None) -> None:
        super().__init__(POLICIES, fallback)

    def with_fallback(self, fallback: AsyncPolicyResolver) -> AsyncPolicyResolver:
        return AsyncIndexKeyedPolicies(fallback)


def sync_cluster_client(url: str, options: dict[str, Any]) -> redis.cluster.RedisCluster:
    """Connects at once (reads the slot map): raises redis.ConnectionError when no
    listed node answers."""
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


class KnownCommands(AsyncCommandsParser):
    """redis-py's asyncio command table, filled from one already read.

    Each asyncio cluster client reads the server's whole COMMAND reply when it starts
    (to find key positions) and parses it in Python: ~100 ms of the ~130 ms a client's
    start took here, paid by every `asyncio.run()` that uses the cache. The table does not
    depend on the event loop, so the first client's is given to the later ones. A command
    missing from it still makes redis-py read COMMAND again (`initialize()` without a
    node)."""

    def __init__(self, commands: dict[str, Any]) -> None:
        super().__init__()
        self.commands = commands

    async def initialize(self, node: Any = None) -> None:
        if node is not None and self.commands:
            self.node = node  # where COMMAND GETKEYS goes for movable keys
            return
        await super().initialize(node)


def async_cluster_client(
    url: str, options: dict[str, Any], commands: dict[str, Any] | None = None
) -> redis.asyncio.cluster.RedisCluster:
    """Lazy: connects on its first command. `commands`: a command table another client
    read (`client.commands_parser.commands`), see `KnownCommands`."""
    target = parse_cluster_url(url)
    nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in target.hosts]
    kw = _kwargs(target, options)
    kw.pop("pool_timeout", None)  # the backend's gate waits instead (see redis_cluster)
    client = redis.asyncio.cluster.RedisCluster(
        startup_nodes=nodes,
        retry=AsyncRetry(NoBackoff(), 0),
        policy_resolver=AsyncIndexKeyedPolicies(),
        reinitialize_steps=0,  # see the module docstring
        **kw,
    )
    if commands:
        client.commands_parser = KnownCommands(commands)
    return client
