"""The embedded in-process backend: used when no CACHE_REDIS_URL is configured.

Stores Python objects as they are (like functools.lru_cache: a hit costs no decoding,
and callers must not mutate results they get back). Thread-safe (writes under a lock,
hits without one: see `get`), TTL per entry, bounded by CACHE_MEMORY_MAX_ENTRIES with
least-recently-used eviction.

Vectors live in partitions keyed by (tenant, function, scope, user, embedder): a
semantic lookup only ever sees the matrix of entries it may match (never vectors of
another embedder or dimension), so isolation is structural and the search is one
matrix-vector product, the same work as a bare numpy top-1.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _forksafe
from .._binding import MISSING
from .._errors import CodecError
from .._loaded import loaded_class
from ._base import Entry, Neighbour, Stored, VectorQuery
from ._partition import _Partition

_PartitionKey = tuple[str, str, str, str, str]  # tenant, fn, scope, user, embedder
# Bytes a partition holds beyond its matrix (its key tuple and strings, the object, the
# key list, the dict slots), measured with tracemalloc: one per user and scope.
_PARTITION_OVERHEAD = 1100


def approx_size(value: object, _depth: int = 0) -> int:
    """Roughly how many bytes a result holds (containers walked a few levels deep)."""
    # numpy is imported only where a vector is needed: exact caching never loads it, and
    # an array can only exist if numpy was imported by someone.
    ndarray = loaded_class("numpy", "ndarray")
    if ndarray is not None and isinstance(value, ndarray):
        return int(value.nbytes) + 112
    size = sys.getsizeof(value, 64)
    if _depth >= 4:
        return size
    if isinstance(value, dict):
        return size + sum(
            approx_size(k, _depth + 1) + approx_size(v, _depth + 1) for k, v in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return size + sum(approx_size(v, _depth + 1) for v in value)
    if hasattr(value, "__dict__"):
        return size + approx_size(vars(value), _depth + 1)
    return size


@dataclass(slots=True)
class _Record:
    entry: Entry
    expires_at: float
    stored: Stored  # built once at write time: a hit allocates nothing
    nbytes: int


class MemoryBackend:
    name = "memory"
    supports_vectors = True

    def __init__(
        self,
        max_entries: int = 10000,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 256 * 1024 * 1024,
        max_value_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_value_bytes = max_value_bytes
        self.nbytes = 0
        self._clock = clock
        # A plain Lock (cheaper than RLock on every hit): no method re-enters it; the
        # internal helpers (_remove, _matching) run with it already held.
        self._lock = threading.Lock()
        self._data: OrderedDict[str, _Record] = OrderedDict()
        self._partitions: dict[_PartitionKey, _Partition] = {}
        self._rows: dict[str, tuple[_PartitionKey, int]] = {}
        _forksafe.track(self)

    def _fork_lock(self) -> threading.Lock:
        return self._lock  # held across a fork: the child's copy is never half-changed

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    # -- exact ---------------------------------------------------------------------------

    @staticmethod
    def check_of(material: bytes) -> bytes:
        # In-process the full key material is kept and compared: exact, and cheaper
        # than any digest.
        return material

    def get(self, key: str) -> Stored | None:
        # The hit path takes no lock (a lock's enter/exit cost as much as the rest of
        # the read): `get` and `move_to_end` are single C calls on str keys, atomic under
        # the GIL, and a read only reorders, never adds, removes or charges bytes; what
        # does (writes, expiry, eviction) runs under the lock. A record removed between
        # the lookup and the move was live when it was looked up: the read came first.
        rec = self._data.get(key)
        if rec is None:
            return None
        if rec.expires_at <= self._clock():
            self._expire(key, rec)
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:
            return rec.stored  # removed since the lookup: the read came first
        return rec.stored

    def hit(self, key: str, check: str | bytes) -> Any:
        """The value of the live entry under `key` if its check is `check`, else MISSING:
        `get` and the caller's check compare in one call, for the hit path. A miss of any
        kind (absent, expired, another check) is left to `get`, which expires."""
        rec = self._data.get(key)
        if rec is None:
            return MISSING
        stored = rec.stored
        if stored.check != check or rec.expires_at <= self._clock():
            return MISSING
        try:
            self._data.move_to_end(key)
        except KeyError:
            return stored.value  # removed since the lookup: the read came first (see `get`)
        return stored.value

    def _expire(self, key: str, rec: _Record) -> None:
        with self._lock:
            if self._data.get(key) is rec:  # not already replaced by a fresh write
                self._remove(key)

    def fetch(self, key: str) -> Entry | None:
        with self._lock:
            rec = self._data.get(key)
            if rec is None or rec.expires_at <= self._clock():
                return None
            return rec.entry

    def ttl_ms(self, key: str) -> int | None:
        with self._lock:
            rec = self._data.get(key)
            return None if rec is None else max(0, int((rec.expires_at - self._clock()) * 1000))

    def set(self, entry: Entry, ttl_ms: int) -> None:
        # Everything the record keeps: the value, the key, the key material (the check),
        # the stored text and the entry's own copy of its vector, plus the bookkeeping
        # objects around them (~600 bytes measured with tracemalloc).
        size = approx_size(entry.value) + len(entry.key) + len(entry.check) + 600
        if entry.text is not None:
            size += sys.getsizeof(entry.text)
        if entry.embedding is not None:
            size += entry.embedding.nbytes + 112
        if size > self.max_value_bytes:
            raise CodecError(
                f"result is about {size} bytes, over CACHE_MAX_VALUE_BYTES={self.max_value_bytes}"
            )
        with self._lock:
            if entry.key in self._data:
                self._remove(entry.key)
            self._data[entry.key] = _Record(
                entry, self._clock() + ttl_ms / 1000.0, Stored(entry.value, entry.check), size
            )
            self.nbytes += size
            if (
                entry.embedding is not None
                and entry.scope is not None
                and entry.embedder is not None
            ):
                pkey = (entry.tenant, entry.fn, entry.scope, entry.user, entry.embedder)
                part = self._partitions.get(pkey)
                if part is None:
                    part = self._partitions[pkey] = _Partition(entry.embedding.shape[0])
                    self.nbytes += part.matrix.nbytes + _PARTITION_OVERHEAD
                # Charge what is allocated, not what is used: a partition's matrix grows
                # by doubling from 8 rows, so 20,000 one-entry users hold 8 rows each.
                allocated = part.matrix.nbytes
                self._rows[entry.key] = (pkey, part.add(entry.key, entry.embedding))
                self.nbytes += part.matrix.nbytes - allocated
            while len(self._data) > self.max_entries or (
                self.nbytes > self.max_bytes and len(self._data) > 1
            ):
                # One C call takes the least recently used entry: an iterator over
                # `_data` would raise if a lock-free `get` reordered it meanwhile.
                self._forget(*self._data.popitem(last=False))

    def get_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        return [self.get(k) for k in keys]

    def set_many(self, entries: list[Entry], ttl_ms: int, *, bulk: bool = False) -> int:
        written = 0
        for entry in entries:
            try:
                self.set(entry, ttl_ms)
            except CodecError:
                continue  # over CACHE_MAX_VALUE_BYTES: not stored, like Redis
            written += 1
        return written

    def _remove(self, key: str) -> bool:
        rec = self._data.pop(key, None)
        if rec is not None:
            self._forget(key, rec)
        return rec is not None

    def _forget(self, key: str, rec: _Record) -> None:
        """The accounting of a record just taken out of `_data` (lock held)."""
        self.nbytes -= rec.nbytes
        located = self._rows.pop(key, None)
        if located is not None:
            pkey, row = located
            part = self._partitions[pkey]
            moved = part.remove(row)
            if moved is not None:
                self._rows[moved] = (pkey, row)
            if part.n == 0:
                del self._partitions[pkey]
                self.nbytes -= part.matrix.nbytes + _PARTITION_OVERHEAD

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._remove(key)

    def _matching(self, tenant: str | None, fn: str | None) -> list[str]:
        now = self._clock()
        data = self._data
        # `list(data)` is one C call (the keys are there, nothing is allocated per key):
        # a Python loop over `data` would raise if a lock-free `get` reordered it.
        records = [(k, data[k]) for k in list(data)]
        return [
            k
            for k, rec in records
            if (tenant is None or rec.entry.tenant == tenant)
            and (fn is None or rec.entry.fn == fn)
            and rec.expires_at > now
        ]

    def clear(
        self, tenant: str, fn: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        with self._lock:
            keys = self._matching(tenant, fn)
            for k in keys:
                self._remove(k)
        if progress is not None:
            progress(len(keys))
        return len(keys)

    def count(self, tenant: str | None = None, fn: str | None = None) -> int | None:
        with self._lock:
            return len(self._matching(tenant, fn))

    def entries(self, tenant: str | None = None) -> list[Entry]:
        """Live entries (for stats and the CLI)."""
        with self._lock:
            return [self._data[k].entry for k in self._matching(tenant, None)]

    # -- vectors -------------------------------------------------------------------------

    def knn(self, query: VectorQuery) -> list[Neighbour]:
        with self._lock:
            q = query
            if None not in (q.fn, q.scope, q.user, q.embedder):
                part = self._partitions.get((q.tenant, q.fn, q.scope, q.user, q.embedder))  # type: ignore[arg-type]
                parts = [part] if part is not None else []
            else:
                parts = [
                    p
                    for (t, f, s, u, e), p in self._partitions.items()
                    if t == q.tenant
                    and (q.fn is None or f == q.fn)
                    and (q.scope is None or s == q.scope)
                    and (q.user is None or u == q.user)
                    and (q.embedder is None or e == q.embedder)
                    and p.matrix.shape[1] == q.vector.shape[0]
                ]
            scored: list[tuple[float, str]] = []
            if parts:
                import numpy as np
            for part in parts:
                sims = part.matrix[: part.n] @ query.vector
                if query.text_h is not None:  # only the same normalised text may match
                    same = [self._data[key].entry.text_h == query.text_h for key in part.keys]
                    sims = np.where(same, sims, -np.inf)
                k = min(query.k, part.n)
                if k == 1:  # the common case: no partial sort, no negated copy
                    top: Any = (int(np.argmax(sims)),)
                elif k < part.n:
                    top = np.argpartition(sims, part.n - k)[part.n - k :]
                else:
                    top = range(part.n)
                scored.extend((float(sims[i]), part.keys[i]) for i in top if sims[i] > -np.inf)
            scored.sort(key=lambda s: -s[0])
            now = self._clock()
            out: list[Neighbour] = []
            for sim, key in scored:
                rec = self._data[key]
                if rec.expires_at <= now:
                    self._remove(key)
                    continue
                e = rec.entry
                out.append(
                    Neighbour(
                        key,
                        sim,
                        e.tenant,
                        e.user,
                        e.fn,
                        e.scope,
                        e.text,
                        e.created_at,
                        e.value if query.with_values else None,
                        e.check,
                        min_similarity=e.min_similarity,
                        text_h=e.text_h,
                        embedder=e.embedder,
                    )
                )
                if len(out) == query.k:
                    break
            return out

    def raise_min_similarity(self, key: str, similarity: float) -> bool:
        with self._lock:
            rec = self._data.get(key)
            if rec is None or rec.expires_at <= self._clock():
                return False
            rec.entry.min_similarity = max(rec.entry.min_similarity, float(similarity))
            return True

    def ping(self) -> float:
        return 0.0

    def close(self) -> None:
        """Nothing to release; entries stay until the process ends."""

    # -- async twins (no I/O here, so they run inline) -------------------------------------

    async def aget(self, key: str) -> Stored | None:
        return self.get(key)

    async def aget_many(self, keys: list[str]) -> list[Stored | CodecError | None]:
        return self.get_many(keys)

    async def aset_many(self, entries: list[Entry], ttl_ms: int) -> int:
        return self.set_many(entries, ttl_ms)

    async def aset(self, entry: Entry, ttl_ms: int) -> None:
        self.set(entry, ttl_ms)

    async def adelete(self, key: str) -> bool:
        return self.delete(key)

    async def araise_min_similarity(self, key: str, similarity: float) -> bool:
        return self.raise_min_similarity(key, similarity)

    async def aknn(self, query: VectorQuery) -> list[Neighbour]:
        return self.knn(query)
