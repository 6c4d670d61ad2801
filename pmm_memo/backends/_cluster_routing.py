"""How pmm_memo's cluster clients route RediSearch commands, react to MOVED and start on
a new event loop: adaptations of redis-py's cluster clients (imported only when one is
built, so an older redis-py fails with a clear error at configuration instead).

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

from typing import Any

from redis._parsers.commands import (
    AsyncCommandsParser,
    CommandPolicies,
    PolicyRecords,
    RequestPolicy,
    ResponsePolicy,
)
from redis.commands.policies import (
    STATIC_POLICIES,
    AsyncBasePolicyResolver,
    AsyncPolicyResolver,
    BasePolicyResolver,
    PolicyResolver,
)

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
