"""The semantic half of `RedisBackend`: the RediSearch index (created once, verified
against the configured schema, re-created if the server lost it) and KNN lookups.

Why its own module: exact caching never touches it; a server without the search module
still caches exactly (or raises SearchUnavailableError with CACHE_REQUIRE_SEARCH=true).
A mixin of `RedisBackend`; the cluster backend overrides it per primary (`_cluster_search`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from .._errors import IndexSchemaError, SearchUnavailableError
from ._base import Neighbour, VectorQuery
from ._index import (
    LEGACY_TAGS,
    IndexSpec,
    adopt_algorithm,
    check_compatible,
    describe_existing,
    index_missing,
    index_stale,
)
from ._redis_layout import (
    _FEEDBACK_FIELDS,
    _FILTER_FIELDS,
    _MATCH_FIELDS,
    _PEOPLE_FIELDS,
    _SEMANTIC_BOUND,
    _TEXT_FIELDS,
    RedisEntries,
    _acommand,
    _command,
    _iter_docs,
    _u,
)

logger = logging.getLogger("pmm_memo")


class RedisSearch(RedisEntries):
    """Index lifecycle and KNN, for `RedisBackend`."""

    client: redis.Redis
    url: str
    require_search: bool
    _index_source: IndexSpec | Callable[[], IndexSpec] | None
    _index: IndexSpec | None
    _search: bool | None
    _index_ready: bool
    _index_error: IndexSchemaError | SearchUnavailableError | None
    _warned_no_search: bool
    _warned_schema: bool
    _warned_leftovers: bool = False

    if TYPE_CHECKING:

        def url_masked(self) -> str: ...

        async def aclient(self) -> redis.asyncio.Redis: ...

    @property
    def index(self) -> IndexSpec | None:
        if self._index is None and self._index_source is not None:
            src = self._index_source
            self._index = src if isinstance(src, IndexSpec) else src()
        return self._index

    def search_available(self) -> bool:
        if self._search is None:
            try:
                _command(self.client, "FT._LIST")
                self._search = True
            except redis.ResponseError:
                self._search = False
        return self._search

    def ensure_index(self) -> bool:
        """Create or verify the index. False (exact-only) when the server cannot search.

        Raises IndexSchemaError when an index of that name has another schema, and
        SearchUnavailableError without a search module if CACHE_REQUIRE_SEARCH is true.
        The outcome is remembered: this costs round trips once, not per call.
        """
        if self._index_ready:
            return True
        if self._index_error is not None:
            raise self._index_error
        if self.index is None:
            return False
        if not self.search_available():
            if self.require_search:
                self._index_error = SearchUnavailableError(
                    f"{self.url_masked()} has no search module (FT.* commands) and "
                    f"CACHE_REQUIRE_SEARCH=true; use Redis 8 or Redis Stack"
                )
                raise self._index_error
            if not self._warned_no_search:
                self._warned_no_search = True
                logger.warning(
                    "%s has no search module (FT.* commands): exact caching works, "
                    "semantic lookups are exact-only (use Redis 8 or Redis Stack; "
                    "CACHE_REQUIRE_SEARCH=true makes this an error)",
                    self.url_masked(),
                )
            return False
        self._verify_index(self.index)
        self._index_ready = True
        self._warn_leftovers()
        return True

    def _warn_leftovers(self) -> None:
        """Say once, when the index is first verified, that an old-schema one remains."""
        if self._warned_leftovers:
            return
        self._warned_leftovers = True
        try:
            found = self.leftover_indexes()
        except redis.RedisError:
            return  # health_check() asks again
        for old in found:
            logger.warning(
                "search index %s (the schema before pmm_memo's `part` tag) is never "
                "queried but still indexes every new entry, a second copy of each "
                "vector: drop it, keeping the entries, with `%s`",
                old["index"],
                old["remove"],
            )

    def leftover_indexes(self) -> list[dict[str, Any]]:
        """This index under its first schema's name, if the server still has it.

        It never answers a lookup (its filter fields are not written any more, and its
        name is not ours), so old entries are misses, never wrong hits; but it keeps
        indexing every entry with a vector until dropped (the entries stay)."""
        spec = self.index
        if spec is None or spec.legacy_name is None or not self.search_available():
            return []
        try:
            info = describe_existing(_command(self.client, "FT.INFO", spec.legacy_name))
        except redis.ResponseError:
            return []  # no such index
        if info["prefixes"] != [spec.prefix] or not set(LEGACY_TAGS) & set(info["fields"]):
            return []  # not an old index of ours
        name = spec.legacy_name
        return [{"index": name, "num_docs": info["num_docs"], "remove": f"FT.DROPINDEX {name}"}]

    def _verify_index(self, spec: IndexSpec) -> None:
        """Create the index if it is missing; IndexSchemaError if it differs."""
        try:
            info = _command(self.client, "FT.INFO", spec.name)
        except redis.ResponseError as exc:
            if not index_missing(exc):
                raise
            try:
                _command(self.client, *spec.create_args())
            except redis.ResponseError as create_exc:
                if "already exists" not in str(create_exc).lower():
                    raise
            info = _command(self.client, "FT.INFO", spec.name)
        adopted = adopt_algorithm(spec, info)
        if adopted is not spec:
            logger.info(
                "index %s uses %s (CACHE_VECTOR_ALGORITHM=%s applies to new indexes)",
                adopted.name,
                adopted.algorithm,
                spec.algorithm,
            )
            if self._index is not None:  # a cluster's per-primary names share one spec
                self._index = dataclasses.replace(adopted, name=self._index.name)
        try:
            check_compatible(adopted, info)
        except IndexSchemaError as exc:
            self._index_error = exc
            raise

    @property
    def index_error(self) -> IndexSchemaError | SearchUnavailableError | None:
        """The index problem found, if any (for health checks)."""
        return self._index_error

    def _vectors_writable(self) -> bool:
        """May embeddings be written? Not into an index that would ignore them."""
        if self._index_ready:
            return True
        try:
            self.ensure_index()
        except IndexSchemaError as exc:
            if not self._warned_schema:
                self._warned_schema = True
                logger.error("%s; entries are stored without embeddings until fixed", exc)
            return False
        except SearchUnavailableError:
            return True  # stored for later; exact caching is unaffected
        return True

    def index_info(self) -> dict[str, Any] | None:
        if self.index is None or not self.search_available():
            return None
        try:
            return describe_existing(_command(self.client, "FT.INFO", self.index.name))
        except redis.ResponseError:
            return None

    def _knn_filter(self, q: VectorQuery) -> str:
        """One `part` clause: the digest of exactly the partition the query names (a
        decorated call: tenant, user, function, scope; the manager: tenant [and user]).
        Anything it names beyond that is left to the caller's re-check of every hit."""
        parts = self.partitions()
        if q.user is None:
            tag = parts.tenant(q.tenant)
        elif q.fn is None or q.scope is None:
            tag = parts.user(q.tenant, q.user)
        else:
            tag = parts.call(q.tenant, q.user, q.fn, q.scope)
        if q.text_h is not None:
            return f"@part:{{{tag}}} @text_h:{{{q.text_h}}}"
        return f"@part:{{{tag}}}"

    def _knn_parts(self, q: VectorQuery) -> tuple[tuple[Any, ...], bytes, tuple[Any, ...]]:
        """The FT.SEARCH arguments of `q` as (those before the vector, the vector's bytes,
        those after it): apart, so the read-ahead packs the two sides once per shape of
        query and only the vector per call (`_read_ahead._Packer`)."""
        assert self.index is not None
        ef = " EF_RUNTIME $ef" if self.index.algorithm == "HNSW" else ""
        query = f"({self._knn_filter(q)})=>[KNN $k @embedding $vec{ef} AS __score]"
        after: tuple[Any, ...] = ("ef", max(self.index.ef_runtime, q.k)) if ef else ()
        fields = [
            "__score",
            *_FILTER_FIELDS,
            *_FEEDBACK_FIELDS,
            *_MATCH_FIELDS,
            *(_TEXT_FIELDS if q.with_text else ()),
            *(_PEOPLE_FIELDS if q.with_created_at else ()),
            *(("value",) if q.with_values else ()),
        ]
        if q.with_values and self.codec.signs:  # what the signature check needs
            fields += [f for f in _SEMANTIC_BOUND if f not in fields]
        before = ("FT.SEARCH", self.index.name, query, "PARAMS", 4 + len(after), "k", q.k, "vec")
        after += ("SORTBY", "__score", "RETURN", len(fields), *fields)
        return before, self._knn_vector(q), (*after, "LIMIT", 0, q.k, "DIALECT", 2)

    def _knn_vector(self, q: VectorQuery) -> bytes:
        """The query vector as the index stores vectors."""
        vector = q.vector
        if vector.dtype != self._vector_dtype:
            vector = vector.astype(self._vector_dtype)
        return vector.tobytes()

    def _knn_args(self, q: VectorQuery) -> list[Any]:
        before, vector, after = self._knn_parts(q)
        return [*before, vector, *after]

    def _neighbours(self, reply: Any, q: VectorQuery) -> list[Neighbour]:
        below = q.unread_below
        found = []
        for key, f in _iter_docs(reply):
            similarity = 1.0 - float(f.get(b"__score") or b"1")
            if below is not None and similarity < below and not _own_text(f, q.own_text_h):
                found.append(_unread(key, similarity))  # see VectorQuery.unread_below
            else:
                found.append(self._neighbour(key, similarity, f, q))
        return found

    def knn(self, query: VectorQuery) -> list[Neighbour]:
        if not self.ensure_index():
            return []
        try:
            reply = _command(self.client, *self._knn_args(query))
        except redis.ResponseError as exc:
            self._forget_index_if_gone(exc)
            raise
        return self._neighbours(reply, query)

    def _forget_index_if_gone(self, exc: redis.ResponseError) -> None:
        # A restarted server without persistence (or an FT.DROPINDEX) loses the index,
        # another program may make it again differently: forget it, so the next lookup
        # re-creates or adopts it instead of failing forever (see `index_stale`).
        if index_stale(exc):
            self._index_ready = False

    async def aknn(self, query: VectorQuery) -> list[Neighbour]:
        if not self._index_ready:
            # Index creation is a one-time, start-up cost: do it with the sync client.
            ready = await asyncio.to_thread(self.ensure_index)
            if not ready:
                return []
        client = await self.aclient()
        try:
            reply = await _acommand(client, *self._knn_args(query))
        except redis.ResponseError as exc:
            self._forget_index_if_gone(exc)
            raise
        return self._neighbours(reply, query)


def _own_text(fields: dict[bytes, Any], own: str | None) -> bool:
    """Is this neighbour's whole-text digest `own`? (A digest that does not decode is
    not: that neighbour is unreadable, as the full read would find.)"""
    raw = fields.get(b"text_h")
    if own is None or raw is None:
        return False
    try:
        return _u(raw) == own
    except UnicodeDecodeError:
        return False


def _unread(key: Any, similarity: float) -> Neighbour:
    """A neighbour left unread (VectorQuery.unread_below): never served."""
    name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return Neighbour(name, similarity, "", "", None, None, None, None, corrupt=True)
