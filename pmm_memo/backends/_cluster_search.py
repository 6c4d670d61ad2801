"""The semantic half of the cluster backend: per-primary indexes, scatter-gather KNN,
node-by-node health. The design (names, why hits never read FT.SEARCH fields) is in
`_cluster_index`; this module is the I/O around it, as a mixin of `RedisClusterBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import TYPE_CHECKING, Any

import redis

from .._errors import IndexSchemaError
from ._base import Neighbour, VectorQuery
from ._cluster_index import ShardIndexes, ids_of, knn_args, missing_index
from ._cluster_shards import SHARD_ERRORS, Queue
from ._index import IndexSpec, describe_existing, index_stale

if TYPE_CHECKING:
    from .redis import RedisBackend as _Base
else:
    _Base = object

TOPOLOGY_TTL = 5.0  # seconds between slot-map re-reads by lookups
# Everything a neighbour needs, read by key (never from the FT.SEARCH reply).
_FIELDS = (
    "embedding",
    "tenant",
    "user",
    "text",
    "created_at",
    "min_sim",
    "text_h",
    "meta",
    "value",
)
_FIELD_KEYS = tuple(f.encode() for f in _FIELDS)


def _u(raw: Any) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)


class ClusterSearch(_Base):
    # Provided by RedisClusterBackend (the per-shard failure policy).
    if TYPE_CHECKING:
        from .._breaker import CircuitBreaker

        client: Any  # a redis.cluster.RedisCluster

        def breaker(self, shard: str) -> CircuitBreaker: ...
        def _shard_failed(self, shard: str, exc: BaseException) -> Exception: ...
        def _shard_ok(self, shard: str, b: CircuitBreaker) -> None: ...
        def _classify(self, shard: str, since: int, exc: BaseException) -> Exception: ...
        def shard_of(self, key: str, client: Any = None) -> str: ...
        def open_shards(self) -> list[str]: ...
        def _pipelined(self, client: Any, shards: list[str], queue: Queue) -> list[Any]: ...
        async def _apipelined(self, client: Any, shards: list[str], queue: Queue) -> list[Any]: ...

        _replies: dict[str, int]

        def _gate(self) -> contextlib.AbstractContextManager[None]: ...
        def _agate(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def _init_search(self) -> None:
        self.shard_indexes: ShardIndexes | None = None
        self._topology_at = 0.0

    def search_available(self) -> bool:
        """FT._LIST names no key: ask the primaries (all must have the module).

        One by one: asked all at once, one dead primary raised for the whole cluster,
        and every lookup and vector write of a process started during that outage
        switched the whole cache off. A primary that does not answer opens its own
        breaker; the ones that answer decide (all failing: the last failure is raised)."""
        if self._search is None:
            client = self.client
            failure: BaseException | None = None
            for node in client.get_primaries():
                try:
                    client.execute_command("FT._LIST", target_nodes=node)
                except redis.ResponseError:
                    self._search = False
                    return False
                except SHARD_ERRORS as exc:
                    self._shard_failed(node.name, exc)
                    failure = exc
                    continue
                self._search = True
            if self._search is None and failure is not None:
                raise failure
        return bool(self._search)

    def _plan(self, client: Any = None) -> dict[str, str]:
        """{primary host:port: its index name}. Every TOPOLOGY_TTL seconds the slot map
        is re-read first: a node that gained slots is found even if no key operation
        met a MOVED yet."""
        assert self.index is not None
        if self.shard_indexes is None:
            self.shard_indexes = ShardIndexes(self.index.name, self.index.legacy_name)
        client = self.client
        now = time.monotonic()
        if now - self._topology_at > TOPOLOGY_TTL:
            self._topology_at = now
            # redis-py asks its startup nodes in random order: a frozen primary (its
            # breaker open) cost a lookup a socket timeout at most re-reads. Asked last.
            down = self.open_shards()
            client.nodes_manager.initialize(last_failed_node_name=down[0] if down else None)
        return self.shard_indexes.names(client.nodes_manager.slots_cache)

    def _verify_index(self, spec: IndexSpec) -> None:
        """Every primary's index exists with our schema (created where missing). A shard
        that is down is skipped: it is verified when a lookup next reaches it."""
        from .redis import RedisBackend

        names = self._plan()
        assert self.shard_indexes is not None
        for node, name in names.items():
            if (node, name) in self.shard_indexes.ready:
                continue
            try:
                RedisBackend._verify_index(self, dataclasses.replace(spec, name=name))
            except SHARD_ERRORS as exc:
                self._shard_failed(node, exc)
                continue
            self.shard_indexes.ready.add((node, name))

    def _warn_leftovers(self) -> None:
        """Per-node leftovers (old schema included) are in `nodes_health()`."""

    def leftover_indexes(self) -> list[dict[str, Any]]:
        return []  # see nodes_health()

    def _forget_index_if_gone(self, exc: redis.ResponseError) -> None:
        if (missing_index(exc) or index_stale(exc)) and self.shard_indexes is not None:
            self.shard_indexes.invalidate()

    def _pending(self, names: dict[str, str]) -> bool:
        return self.shard_indexes is None or any(
            pair not in self.shard_indexes.ready for pair in names.items()
        )

    # -- scatter, then gather by key ---------------------------------------------------------

    def _targets(self, names: dict[str, str]) -> list[tuple[str, str]]:
        out = []
        for node, name in names.items():
            b = self.breaker(node)
            if not b.is_open or b.allow():
                out.append((node, name))
        return out

    def _ids(
        self, targets: list[tuple[str, str]], replies: list[Any], since: dict[str, int]
    ) -> list[str]:
        """Candidate keys from every shard that answered (a down shard only narrows the
        search; its breaker is opened)."""
        ids: dict[str, None] = {}
        for (node, name), reply in zip(targets, replies, strict=True):
            if isinstance(reply, SHARD_ERRORS):
                # A timeout while the node answered other calls is load: not an outage.
                self._classify(node, since.get(node, 0), reply)
                continue
            self._replies[node] = self._replies.get(node, 0) + 1
            if isinstance(reply, BaseException):
                if missing_index(reply) and self.shard_indexes is not None:
                    # Re-created before the next lookup.
                    self.shard_indexes.invalidate((node, name))
                    continue
                raise reply
            self._shard_ok(node, self.breaker(node))
            ids.update(dict.fromkeys(ids_of(reply)))
        return list(ids)

    def _ranked(self, keys: list[str], rows: list[Any], q: VectorQuery) -> list[Neighbour]:
        import numpy as np

        query = np.asarray(q.vector, dtype=np.float32)
        qnorm = float(np.linalg.norm(query)) or 1.0
        out = []
        for key, row in zip(keys, rows, strict=True):
            if isinstance(row, SHARD_ERRORS) or not isinstance(row, list | tuple):
                continue  # the shard went away between search and read: not a candidate
            f = dict(zip(_FIELD_KEYS, row, strict=True))
            if not f[b"embedding"]:
                continue  # expired or overwritten without a vector since the search
            vec = np.frombuffer(f[b"embedding"], dtype=self._vector_dtype).astype(np.float32)
            if vec.shape != query.shape:
                continue
            norm = float(np.linalg.norm(vec)) or 1.0
            similarity = float(np.dot(vec, query)) / (norm * qnorm)
            out.append(self._neighbour(key, similarity, f, q))
        out.sort(key=lambda n: (-n.similarity, n.key))
        return out[: q.k]

    def knn(self, query: VectorQuery) -> list[Neighbour]:
        with self._gate():
            return self._knn(query)

    def _knn(self, query: VectorQuery) -> list[Neighbour]:
        if not self.ensure_index():
            return []
        client = self.client
        names = self._plan()
        if self._pending(names):
            self._verify_index(self._spec())
        targets = self._targets(names)
        base = self._knn_args(query)
        since = {node: self._replies.get(node, 0) for node, _ in targets}
        # Explicit target: redis-py's sync pipeline ignores the client's policy resolver
        # (see _cluster_connect), so FT.SEARCH would go to a random primary.
        replies = self._pipelined(
            client,
            [node for node, _ in targets],
            lambda p, i: p.execute_command(
                *knn_args(base, targets[i][1]),
                target_nodes=client.get_node_from_key(targets[i][1]),
            ),
        )
        keys = self._ids(targets, replies, since)
        if not keys:
            return []
        rows = self._pipelined(
            client, [self.shard_of(k, client) for k in keys], lambda p, i: p.hmget(keys[i], _FIELDS)
        )
        return self._ranked(keys, rows, query)

    async def aknn(self, query: VectorQuery) -> list[Neighbour]:
        async with self._agate():
            return await self._aknn(query)

    async def _aknn(self, query: VectorQuery) -> list[Neighbour]:
        client: Any = await self.aclient()
        shards = self.shard_indexes
        names = shards.current() if shards is not None and shards.fresh() else None
        if names is None:
            names = await asyncio.to_thread(self._plan)
        # Index creation is a one-time, start-up cost: done with the sync client.
        if (not self._index_ready or self._pending(names)) and not await asyncio.to_thread(
            self._ensure_all
        ):
            return []
        targets = self._targets(names)
        base = self._knn_args(query)
        since = {node: self._replies.get(node, 0) for node, _ in targets}
        replies = await asyncio.gather(
            *(client.execute_command(*knn_args(base, name)) for _, name in targets),
            return_exceptions=True,
        )
        keys = self._ids(targets, list(replies), since)
        if not keys:
            return []
        rows = await self._apipelined(
            client, [self.shard_of(k, client) for k in keys], lambda p, i: p.hmget(keys[i], _FIELDS)
        )
        return self._ranked(keys, rows, query)

    def _spec(self) -> IndexSpec:
        spec = self.index
        assert spec is not None
        return spec

    def _ensure_all(self) -> bool:
        if not self.ensure_index():
            return False
        self._verify_index(self._spec())
        return True

    # -- reporting ---------------------------------------------------------------------------

    def index_info(self) -> dict[str, Any] | None:
        """The index as on a single node, with num_docs summed over the primaries."""
        if self.index is None or not self.search_available():
            return None
        total, first = 0, None
        for name in self._plan().values():
            try:
                info = describe_existing(self.client.execute_command("FT.INFO", name))
            except redis.ResponseError:
                continue
            total += info["num_docs"]
            first = first or info
        if first is None:
            return None
        return {**first, "num_docs": total}

    def nodes_health(self) -> dict[str, Any]:
        """Per primary: reachable, latency, its index and document count; plus indexes
        left behind by topology changes, with the commands that remove them."""
        client = self.client
        names = self._plan() if self.index is not None else {}
        nodes: list[dict[str, Any]] = []
        listed = []
        for node in client.get_primaries():
            row: dict[str, Any] = {
                "node": node.name,
                "connected": False,
                "latency_ms": None,
                "breaker_open": self.breaker(node.name).is_open,
                "index": names.get(node.name),
                "index_docs": None,
            }
            try:
                start = time.perf_counter()
                client.ping(target_nodes=node)
                row["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
                row["connected"] = True
                if self.index is not None and self.search_available():
                    listed.append(
                        (
                            node.name,
                            _u(client.execute_command("CLUSTER MYID", target_nodes=node)),
                            client.execute_command("FT._LIST", target_nodes=node),
                        )
                    )
                    if row["index"] is not None:
                        info = client.execute_command("FT.INFO", row["index"])
                        row["index_docs"] = describe_existing(info)["num_docs"]
            except (redis.RedisError, OSError, IndexSchemaError) as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
            nodes.append(row)
        leftovers = (
            [x.as_dict() for x in self.shard_indexes.leftovers(listed)]
            if self.shard_indexes is not None
            else []
        )
        return {
            "nodes": nodes,
            "nodes_ok": sum(1 for n in nodes if n["connected"]),
            "leftover_indexes": leftovers,
        }
