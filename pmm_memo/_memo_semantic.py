"""Semantic matching for a decorated function: what a call contributes (its text window
and scope digest), the entry it stores, the KNN query, the matcher and judge, and
`report_wrong_hit`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ._binding import MISSING
from ._keys import BoundCall
from ._memo_core import MemoCore
from ._semantic import SemanticText, prepare
from ._textarg import replace_text
from .backends._base import Entry, Neighbour, VectorQuery

if TYPE_CHECKING:
    import numpy as np

    from ._cache import Cache
    from ._candidates import Candidate


class _Semantic(NamedTuple):
    text: SemanticText | None  # None: nothing to embed (no str text, or empty)
    scope: str  # digest of what must be equal for a semantic match


# A `semantic_lookup` function whose exact reads found nothing this many times in a row
# sends its next exact read in the KNN query's round trip (`Cache.read_knn`): every call
# a paraphrase or a new question. Its first exact hit goes back to reading first, so an
# embedding and a KNN are spent ahead of an exact hit at most once per such run.
AHEAD_AFTER = 8


class SemanticMemo(MemoCore):
    """MemoCore plus semantic matching (used by `embed_key` and `semantic_lookup`)."""

    ahead = False  # read ahead: see AHEAD_AFTER (class defaults, set per instance)
    _missed = 0  # exact reads in a row that found nothing
    _hits_seen = 0  # counters.hits when _missed was last counted

    def semantic_of(self, cache: Cache, call: BoundCall) -> _Semantic:
        """What this call contributes to matching: its text (None: nothing to embed) and
        its scope digest (everything that must be equal: the other arguments, and the
        part of the text that is not embedded)."""
        text_fn = self.keys.text_fn
        if text_fn is None:
            raw = call.text
            material = call.scope_material()
        else:
            raw = text_fn(call.arguments())
            if raw is not None and not isinstance(raw, str):
                raise TypeError(
                    f"text_arg callable of {self.fn_name} returned "
                    f"{type(raw).__name__}; it must return the text to embed (str) or None"
                )
            found = False

            def replace(value: Any) -> Any:
                nonlocal found
                new, hit = replace_text(value, raw)
                found = found or hit
                return new

            # No text (None): nothing to take out; the whole arguments are the scope.
            material = call.scope_material(None if raw is None else replace)
            if raw is not None and not found:
                self._warn_once(
                    "%s: the text_arg callable returned a text that is not one of the "
                    "arguments' own strings, so the scope holds the whole arguments and "
                    "only the same call matches; return the argument's string itself",
                    self.fn_name,
                )
        text = None
        if not self.embed_key:
            pass  # exact caching only: nothing is embedded
        elif isinstance(raw, str):
            if cache.config.enable_embeddings:
                text = prepare(raw, cache.config.max_text_length)
        elif raw is not None:
            self._warn_not_str(raw)
        scope = cache.digests.scope(material if text is None else material + text.scope_suffix())
        return _Semantic(text, scope)

    def _warn_not_str(self, raw: Any) -> None:
        self._warn_once(
            "%s: text argument %r is %s, not str: it is not embedded, so only exact "
            "matches are served; pass text_arg=callable returning the text "
            "(e.g. the last user message)",
            self.fn_name,
            self.keys.text_arg,
            type(raw).__name__,
        )

    def entry(
        self,
        cache: Cache,
        call: BoundCall,
        key: str,
        check: str | bytes,
        value: Any,
        vector: np.ndarray | None,
        sem: _Semantic | None = None,
    ) -> Entry:
        scope = None
        text = None
        if self.embed_key:
            text, scope = sem if sem is not None else self.semantic_of(cache, call)
        return Entry(
            key=key,
            value=value,
            check=check,
            tenant=self.tenant,
            user=self.user_of(call),
            fn=self.fn_of(cache),
            fn_name=self.fn_name,
            created_at=time.time(),
            text=None if text is None else text.window,
            scope=scope,
            embedding=vector,
            text_h=None if text is None else text.digest,
            embedder=None if vector is None else cache.embedder_id.label,
        )

    def query(self, cache: Cache, call: BoundCall, sem: _Semantic, vector: Any) -> VectorQuery:
        assert self.matcher is not None and sem.text is not None
        text = sem.text
        exact_only = self.matcher.exact_only
        return VectorQuery(
            tenant=self.tenant,
            vector=vector,
            k=self.matcher.fetch(self.k or cache.config.knn_k),
            fn=self.fn_of(cache),
            scope=sem.scope,
            user=self.user_of(call),
            embedder=cache.embedder_id.label,
            # threshold=1.0: only the same normalised text, found by its digest.
            text_h=text.digest if exact_only else None,
            # The matcher, guards and judge compare texts (not needed at 1.0).
            with_text=not exact_only,
            with_created_at=False,  # a hit never reads it
            lazy_values=True,  # the matcher settles each neighbour it may serve
            unread_below=self.matcher.threshold,  # what the matcher turns away unread
            own_text_h=text.digest,
        )

    def lookup(
        self, cache: Cache, call: BoundCall, sem: _Semantic, vector: Any, record: bool = True
    ) -> Neighbour | None:
        """The neighbour the matcher accepts (the judge, if any, is asked by the caller: it
        may be async), or None. `record=False`: no similarity or rejection is counted."""
        query = self.query(cache, call, sem, vector)
        return self.accept(cache, query, sem, cache.knn(query, self.counters), record)

    def _candidates(
        self, query: VectorQuery, sem: _Semantic, found: list[Neighbour], record: bool
    ) -> Iterator[Candidate]:
        """The matcher's candidates among `found` (recording the nearest similarity)."""
        assert self.matcher is not None and sem.text is not None
        if found and record:
            self.counters.record_similarity(found[0].similarity)
        counters = self.counters if record else None
        return self.matcher.candidates(query, sem.text, found, counters)

    def accept(
        self,
        cache: Cache,
        query: VectorQuery,
        sem: _Semantic,
        found: list[Neighbour],
        record: bool = True,
    ) -> Neighbour | None:
        """The first of `found` that the matcher accepts, or None."""
        for c in self._candidates(query, sem, found, record):
            assert self.matcher is not None
            if c.compare is None or self.matcher.confirm(
                cache.embed_many(c.compare, self.counters)
            ):
                return c.neighbour
        return None

    # -- reading ahead (see AHEAD_AFTER) ------------------------------------------------------

    def exact_missed(self, cache: Cache) -> None:
        """This function's exact read found nothing (read in its own round trip): after
        AHEAD_AFTER such reads with no exact hit between them (told by `counters.hits`),
        its next calls read ahead. Plain attributes: a lost update under threads only
        delays the switch."""
        if cache.reads_ahead is None:
            return
        hits = self.counters.hits
        if hits != self._hits_seen:
            self._hits_seen = hits
            self._missed = 0
        self._missed += 1
        if self._missed >= AHEAD_AFTER:
            self.ahead = True

    def read_first(self) -> None:
        """Back to reading the call's own key first: a read ahead found it, failed (a
        KNN slower than the socket timeout must not cost the exact hits behind it), had
        no vector to search with (an embedder failing, or slow, must not either), or
        met a cache that cannot read ahead (a new default cache)."""
        self.ahead = False
        self._missed = 0

    def read_ahead(
        self,
        cache: Cache,
        call: BoundCall,
        sem: _Semantic,
        vector: Any,
        key: str,
        check: str | bytes,
    ) -> tuple[Any, Neighbour | None]:
        """The exact read and the KNN in one round trip (two steps when the cache cannot):
        (the call's own value or MISSING, the neighbour the matcher accepts or None)."""
        query = self.query(cache, call, sem, vector)
        counters = self.counters
        both = cache.read_knn(key, check, query, counters)
        if both is None:
            if cache.reads_ahead is None:
                self.read_first()
            value = cache.read(key, check, counters)
            if value is not MISSING:
                return value, None
            found = cache.knn(query, counters)
        else:
            value, maybe = both
            if value is not MISSING:
                return value, None
            if maybe is None:  # the read failed
                self.read_first()
                return MISSING, None
            found = maybe
        return MISSING, self.accept(cache, query, sem, found)

    async def aread_ahead(
        self,
        cache: Cache,
        call: BoundCall,
        sem: _Semantic,
        vector: Any,
        key: str,
        check: str | bytes,
    ) -> tuple[Any, Neighbour | None]:
        query = self.query(cache, call, sem, vector)
        counters = self.counters
        both = await cache.aread_knn(key, check, query, counters)
        if both is None:
            if cache.reads_ahead is None:
                self.read_first()
            value = await cache.aread(key, check, counters)
            if value is not MISSING:
                return value, None
            found = await cache.aknn(query, counters)
        else:
            value, maybe = both
            if value is not MISSING:
                return value, None
            if maybe is None:  # the read failed
                self.read_first()
                return MISSING, None
            found = maybe
        return MISSING, await self.aaccept(cache, query, sem, found)

    def verified(self, text: str, n: Neighbour) -> bool:
        if self.judge is None:
            return True
        if self.judge(text, n.text or ""):
            return True
        self.counters.verify_rejections += 1
        return False

    async def averified(self, text: str, n: Neighbour) -> bool:
        if self.judge is None:
            return True
        if await self.judge.acall(text, n.text or ""):
            return True
        self.counters.verify_rejections += 1
        return False

    async def alookup(
        self, cache: Cache, call: BoundCall, sem: _Semantic, vector: Any, record: bool = True
    ) -> Neighbour | None:
        query = self.query(cache, call, sem, vector)
        found = await cache.aknn(query, self.counters)
        return await self.aaccept(cache, query, sem, found, record)

    async def aaccept(
        self,
        cache: Cache,
        query: VectorQuery,
        sem: _Semantic,
        found: list[Neighbour],
        record: bool = True,
    ) -> Neighbour | None:
        for c in self._candidates(query, sem, found, record):
            assert self.matcher is not None
            if c.compare is None or self.matcher.confirm(
                await cache.aembed_many(c.compare, self.counters)
            ):
                return c.neighbour
        return None

    def _wrong_hit_query(
        self, cache: Cache, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[BoundCall, _Semantic, Any] | None:
        if not self.semantic:
            raise TypeError("report_wrong_hit is for @semantic_lookup functions")
        call = self.require_bind(args, kwargs, instance)
        sem = self.semantic_of(cache, call)
        if sem.text is None:
            return None
        vector = cache.embed(sem.text.window, self.counters)
        return None if vector is None else (call, sem, vector)

    def report_wrong_hit(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        cache = self.cache()
        found = self._wrong_hit_query(cache, instance, args, kwargs)
        if found is None:
            return False
        n = self.lookup(cache, *found, record=False)
        return n is not None and cache.raise_min_similarity(n.key, n.similarity, self.counters)

    async def areport_wrong_hit(
        self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        cache = self.cache()
        # Binding and embedding as in the sync twin; the embedder call runs in a thread.
        found = await asyncio.to_thread(self._wrong_hit_query, cache, instance, args, kwargs)
        if found is None:
            return False
        n = await self.alookup(cache, *found, record=False)
        if n is None:
            return False
        return await cache.araise_min_similarity(n.key, n.similarity, self.counters)
