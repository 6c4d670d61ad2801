"""The read-ahead half of `Cache`: the exact read and the KNN query of a semantic lookup
in one round trip (see `backends._read_ahead`, `_memo_semantic.AHEAD_AFTER`), under the
same failure policy as `read` and `knn` apart: a failure is counted once, a damaged
entry is corrupt, and each half of the reply fails alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._binding import MISSING
from ._cache_failures import CacheFailures

if TYPE_CHECKING:
    from ._stats import Counters
    from .backends._base import Neighbour, ReadAndSearch, ReadsAhead, Stored, VectorQuery


class CacheReadAhead(CacheFailures):
    """`read_knn` / `aread_knn`, for `Cache`."""

    reads_ahead: ReadsAhead | None

    if TYPE_CHECKING:

        def _verified(
            self, key: str, check: str | bytes, stored: Stored | None, counters: Counters
        ) -> Any: ...
        def _read_failed(
            self, key: str, exc: Exception, counters: Counters, since: int | None = None
        ) -> Any: ...

    def read_knn(
        self, key: str, check: str | bytes, query: VectorQuery, counters: Counters
    ) -> tuple[Any, list[Neighbour] | None] | None:
        """`read` and `knn` in one round trip: (the value or MISSING, the neighbours; None:
        the read failed, counted like a failed `read`), or None when not done that way
        (the backend cannot, the breaker is open, or the reply needs the two-step path's
        judgement): the caller reads, then searches."""
        ahead = self.reads_ahead
        if ahead is None or self.breaker.is_open:
            return None
        since = self.replies
        try:
            both = ahead.get_knn(key, query)
        except Exception as exc:
            self._failed("read", exc, counters, since)
            return MISSING, None
        return self._read_and_found(key, check, both, counters)

    async def aread_knn(
        self, key: str, check: str | bytes, query: VectorQuery, counters: Counters
    ) -> tuple[Any, list[Neighbour] | None] | None:
        ahead = self.reads_ahead
        if ahead is None or self.breaker.is_open:
            return None
        since = self.replies
        try:
            both = await ahead.aget_knn(key, query)
        except Exception as exc:
            self._failed("read", exc, counters, since)
            return MISSING, None
        return self._read_and_found(key, check, both, counters)

    def _read_and_found(
        self, key: str, check: str | bytes, both: ReadAndSearch | None, counters: Counters
    ) -> tuple[Any, list[Neighbour] | None] | None:
        if both is None:
            return None
        self.replies += 1
        stored, found = both
        if isinstance(stored, Exception):
            value = self._read_failed(key, stored, counters)
        else:
            value = self._verified(key, check, stored, counters)
        if isinstance(found, Exception):
            # As in two steps: an exact hit never sees the search; a miss counts its failure.
            if value is MISSING:
                self._failed("search", found, counters)
            return value, []
        return value, found
