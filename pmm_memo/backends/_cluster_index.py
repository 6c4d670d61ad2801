"""Semantic search on an open-source Redis Cluster: one RediSearch index per primary.

Open-source RediSearch has no coordinator: an index sees only the keys of the node it was
created on, and the server routes the index *name* like a key (FT.SEARCH on a node that
does not own the name's slot answers MOVED). So:

- Each primary gets its own index, named `<CACHE_INDEX_NAME>{<n>}`, where `n` is the
  smallest integer whose hash slot (CRC16 of the hash tag) that primary owns, found in
  one pass over the client's slot map. Every process derives the same names from the
  same slot map; nothing is stored. The entries themselves carry no hash tag: they
  spread over all 16384 slots, so one tenant (even a hot one) grows across every node.
- A lookup sends the same KNN query to every primary's index in parallel (one pipeline
  round trip for sync callers, `asyncio.gather` for async ones), then reads the
  candidates' fields with HMGET (routed by key) and computes their cosine similarity on
  the client. It never uses fields of the FT.SEARCH reply: a known server bug returns
  them empty for documents outside the index name's slot, which is most of them. The
  merged top-k is exact: with FLAT indexes, recall@1 equals a single FLAT index's.
- Topology changes: the slot map is re-read from the cluster (CLUSTER SLOTS) every
  few seconds by lookups (and by redis-py after MOVED), names are re-derived, and an
  index missing on a primary
  (a new node, a restarted empty shard) is created before it is searched. Results
  are re-checked against the stored fields by the caller, so a stale plan can cost a
  miss but never a wrong answer.
- What cannot be cleaned up by routing (an index whose name's slot moved to another
  node keeps indexing its old node's keys) is listed by `leftovers()`, with the
  commands that remove it, for `health_check()` and the CLI; so is every index of the
  first schema (`<legacy name>{<n>}`, see `_index`), which no lookup queries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from redis.crc import key_slot

from .. import _forksafe
from ._index import index_missing

PLAN_TTL = 1.0  # seconds between re-derivations of the index names from the slot map


def _s(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def plan_names(base: str, owners: dict[int, str]) -> dict[str, str]:
    """{primary name: index name} for a slot map {slot: primary name}.

    One pass over 0, 1, 2, ...: each primary takes the first integer whose slot it owns.
    With N primaries owning equal ranges this ends after a few dozen integers."""
    primaries = set(owners.values())
    names: dict[str, str] = {}
    i = 0
    while len(names) < len(primaries) and i < 1_000_000:
        node = owners.get(key_slot(str(i).encode()))
        if node is not None and node not in names:
            names[node] = f"{base}{{{i}}}"
        i += 1
    return names


def slot_of_name(name: str) -> int:
    return int(key_slot(name.encode()))


@dataclass(frozen=True)
class Leftover:
    """An index of ours that no lookup uses any more (it still indexes its node's keys)."""

    node: str  # host:port it lives on
    name: str
    slot: int
    owner: str | None  # who owns the name's slot now (None: nobody)
    remove: str  # the command(s) that drop it, index only (the entries stay)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "index": self.name,
            "slot": self.slot,
            "slot_owner": self.owner,
            "remove": self.remove,
        }


class ShardIndexes:
    """The per-primary index names and which of them are known to exist."""

    def __init__(self, base: str, legacy: str | None = None) -> None:
        self.base = base
        self.legacy = legacy  # the first schema's base name (always a leftover)
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._owners: dict[int, str] = {}
        self._planned_at = 0.0
        # (primary, index name) pairs verified or created: a name that moved to another
        # primary (its slot migrated) must be created there too.
        self.ready: set[tuple[str, str]] = set()
        _forksafe.track(self)  # a child forked while another thread held the lock

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def names(self, slots_cache: dict[int, list[Any]], force: bool = False) -> dict[str, str]:
        """{primary: index name}, re-derived at most every PLAN_TTL seconds."""
        now = time.monotonic()
        if not force and self._names and now - self._planned_at < PLAN_TTL:
            return self._names
        with self._lock:
            owners = {slot: nodes[0].name for slot, nodes in slots_cache.items() if nodes}
            if owners != self._owners:
                self._owners = owners
                self._names = plan_names(self.base, owners)
            self._planned_at = now
            return self._names

    def current(self) -> dict[str, str]:
        return self._names

    def fresh(self) -> bool:
        return bool(self._names) and time.monotonic() - self._planned_at < PLAN_TTL

    def invalidate(self, where: tuple[str, str] | None = None) -> None:
        """Forget that an index exists (or every one) and re-read the plan next time."""
        with self._lock:
            if where is None:
                self.ready.clear()
            else:
                self.ready.discard(where)
            self._planned_at = 0.0

    def is_ours(self, name: str) -> bool:
        return name.startswith(self.base + "{") and name.endswith("}")

    def is_legacy(self, name: str) -> bool:
        legacy = self.legacy
        return legacy is not None and name.startswith(legacy + "{") and name.endswith("}")

    def leftovers(self, listed: Iterable[tuple[str, str, list[Any]]]) -> list[Leftover]:
        """Indexes of ours that the current plan does not use.

        `listed`: (node name, node id, FT._LIST reply) per primary."""
        owners = self._owners
        planned = self._names
        ids = {node: node_id for node, node_id, _ in listed}
        out = []
        for node, _node_id, reply in listed:
            for raw in reply or []:
                name = _s(raw)
                if planned.get(node) == name or not (self.is_ours(name) or self.is_legacy(name)):
                    continue
                slot = slot_of_name(name)
                owner = owners.get(slot)
                host, _, port = node.rpartition(":")
                cli = f"valkey-cli -h {host} -p {port}"
                if owner == node:
                    remove = f"{cli} FT.DROPINDEX {name}"
                else:
                    # The name routes elsewhere: mark its slot importing here for one
                    # ASKING'd command, then give the slot back to its owner.
                    owner_id = ids.get(owner or "", "<owner-node-id>")
                    remove = (
                        f"{cli} CLUSTER SETSLOT {slot} IMPORTING {owner_id}; "
                        f"then in one {cli} session: ASKING, FT.DROPINDEX {name}; "
                        f"then {cli} CLUSTER SETSLOT {slot} NODE {owner_id}"
                    )
                out.append(Leftover(node, name, slot, owner, remove))
        return out


def knn_args(args: list[Any], name: str) -> list[Any]:
    """The backend's FT.SEARCH arguments for one shard: its index name, ids only.

    NOCONTENT instead of RETURN: the reply's fields are not trusted (see module doc)."""
    out = list(args)
    out[1] = name
    i = out.index("RETURN")
    del out[i : i + 2 + int(out[i + 1])]
    out.insert(i, "NOCONTENT")
    return out


def ids_of(reply: Any) -> list[str]:
    """Document ids of an FT.SEARCH NOCONTENT reply (RESP2 list or RESP3 map)."""
    if isinstance(reply, dict):
        docs = reply.get(b"results") or reply.get("results") or []
        return [_s(d.get(b"id") or d.get("id")) for d in docs if isinstance(d, dict)]
    if not isinstance(reply, list | tuple) or not reply:
        return []
    return [_s(x) for x in reply[1:] if isinstance(x, bytes | str)]


def missing_index(exc: BaseException) -> bool:
    """`_index.index_missing`, as a shard answers it (also "not found")."""
    return isinstance(exc, redis.ResponseError) and (
        index_missing(exc) or "not found" in str(exc).lower()
    )
