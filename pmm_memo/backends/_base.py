"""The small interface every backend implements, and the records that cross it.

Sync and async twins are named in parallel (`get`/`aget`). Backends raise on I/O failure;
the fail-open policy (breaker, counting, logging) lives once, in `_cache.Cache`, not in
each backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from .._errors import CodecError


@dataclass(slots=True)
class Entry:
    """One cache entry as written. `user` is "" when the call has no user."""

    key: str
    value: Any
    check: str | bytes  # Backend.check_of(key material)
    tenant: str
    user: str
    fn: str  # digest of the function identity
    fn_name: str  # readable function identity, for humans and the CLI
    created_at: float
    text: str | None = None
    scope: str | None = None  # digest of the non-text arguments (semantic entries)
    embedding: np.ndarray | None = None  # L2-normalised float32 (dim,)
    # Feedback: a semantic hit on this entry needs at least this similarity (raised above
    # a reported wrong hit's similarity; 0.0 = only the caller's threshold applies).
    min_similarity: float = 0.0
    text_h: str | None = None  # digest of the whole normalised text (see `_semantic`)
    embedder: str | None = None  # label of the embedder of `embedding` (name/model/dim)


@dataclass(slots=True)
class Stored:
    """What an exact read returns: the value and the check digest it was stored with."""

    value: Any
    check: str | bytes | None


@dataclass(frozen=True, slots=True)
class VectorQuery:
    """A KNN request. Filters are exact: only entries with all of these values match."""

    tenant: str
    vector: np.ndarray  # L2-normalised float32 (dim,)
    k: int
    fn: str | None = None
    scope: str | None = None
    user: str | None = None  # None: any user; "" : entries stored without a user
    embedder: str | None = None  # label of the query vector's embedder: only its entries
    text_h: str | None = None  # only entries with this whole-text digest (threshold 1.0)
    with_values: bool = True
    with_text: bool = True  # the stored text (the matcher, guards and judge compare it)
    # created_at: for people (manager, CLI); a hit never reads it, so the decorators' KNN
    # leaves it out of the reply (two fewer strings per neighbour to parse).
    with_created_at: bool = True
    # Values left to decode until `Neighbour.settle()`: for a caller that settles every
    # neighbour before it reads `value` or `corrupt` (the matcher, `_candidates`), so the
    # neighbour fetched only to compete in the ambiguity check is not decoded and
    # verified for nothing. Backends that keep values decoded (memory) ignore it.
    lazy_values: bool = False
    # Neighbours less similar than `unread_below` whose whole-text digest is not
    # `own_text_h` come back unread: key and similarity only, `corrupt` (never served).
    # For the matcher, which turns such a neighbour away unread anyway (below its
    # threshold, not the query's own text): typically the ambiguity check's competitor,
    # whose fields were parsed on every lookup. Backends may ignore it (read them all).
    unread_below: float | None = None
    own_text_h: str | None = None


@dataclass(slots=True)
class Neighbour:
    key: str
    similarity: float
    tenant: str
    user: str
    fn: str | None
    scope: str | None
    text: str | None
    created_at: float | None
    value: Any = None
    check: str | bytes | None = None
    corrupt: bool = False  # the stored value failed to decode or verify
    min_similarity: float = 0.0  # Entry.min_similarity (feedback on wrong hits)
    text_h: str | None = None
    embedder: str | None = None
    # Decodes `value` (VectorQuery.lazy_values); None: nothing left to decode.
    pending: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    def settle(self) -> None:
        """Decode a value a lazy query left (see VectorQuery.lazy_values): `value`, or
        `corrupt` when it does not decode or verify. Whatever decoding raises makes this
        one neighbour corrupt, as an unreadable field does (`_redis_layout._neighbour`):
        it is never served and fails no other neighbour and no caller."""
        decode = self.pending
        if decode is not None:
            self.pending = None
            try:
                self.value = decode()
            except Exception:
                self.corrupt = True


class Backend(Protocol):
    """Storage. Methods raise on failure; `Cache` decides what a failure means."""

    name: str

    @property
    def supports_vectors(self) -> bool: ...

    def check_of(self, material: bytes) -> str | bytes:
        """What an entry stores to prove it belongs to the call with this key material."""
        ...

    def get(self, key: str) -> Stored | None: ...
    def get_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        """Several reads in one round trip; a bad entry is its CodecError, not a raise."""
        ...

    def fetch(self, key: str) -> Entry | None:
        """The whole entry, embedding included (manager and CLI; not the hit path)."""
        ...

    def set(self, entry: Entry, ttl_ms: int) -> None: ...
    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        """Bulk write; returns how many entries were stored."""
        ...

    def delete(self, key: str) -> bool: ...
    def clear(
        self, tenant: str, fn: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int: ...
    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None: ...
    def knn(self, query: VectorQuery) -> list[Neighbour]: ...
    def raise_min_similarity(self, key: str, similarity: float) -> bool:
        """Raise the entry's min_similarity to `similarity` (never lower it); False when
        the entry is gone."""
        ...

    def ping(self) -> float: ...
    def close(self) -> None: ...

    async def aget(self, key: str) -> Stored | None: ...
    async def aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]: ...
    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int: ...
    async def aset(self, entry: Entry, ttl_ms: int) -> None: ...
    async def adelete(self, key: str) -> bool: ...
    async def aknn(self, query: VectorQuery) -> list[Neighbour]: ...
    async def araise_min_similarity(self, key: str, similarity: float) -> bool: ...


# An exact read's entry (None: no entry) and the neighbours of a KNN query, answered in
# one round trip. Either half is the exception that reading it raised (a damaged entry,
# an unreadable neighbour): each fails alone, as in two steps, so a bad neighbour never
# hides the call's own entry.
ReadAndSearch = tuple["Stored | Exception | None", "list[Neighbour] | Exception"]


class ReadsAhead(Protocol):
    """A backend that can send an exact read and a KNN query together (see
    `_read_ahead`); None from either method: not done, read and search in two steps."""

    def get_knn(self, key: str, query: VectorQuery) -> ReadAndSearch | None: ...
    async def aget_knn(self, key: str, query: VectorQuery) -> ReadAndSearch | None: ...
