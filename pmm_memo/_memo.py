"""The call paths of a decorated function, sync and async twins.

Order of work for a call (semantic steps only for `semantic_lookup`):
1. disabled (context or CACHE_ENABLED=false) -> call the function, nothing else;
2. bind + encode the arguments -> key (bad arguments raise here, before any I/O);
3. exact read -> hit;
4. embed the text argument (its window, see `_semantic`), KNN among entries of the same
   tenant, function, scope, user and embedder -> the nearest neighbour that passes
   `_candidates.Matcher` (threshold, same normalised text at 1.0, its entry's own
   min_similarity raised by `report_wrong_hit`, the guards of `_guards`, changed
   sentences) and the optional judge (`_verify`) is a hit;
5. single-flight: the first concurrent caller computes and stores, others wait for it.

A `semantic_lookup` function whose exact reads keep missing embeds first and sends step
3's read with step 4's KNN query, in one round trip (`SemanticMemo.read_ahead`); its own
entry still wins over any neighbour.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_128_hexdigest

from ._binding import MISSING
from ._context import Mode, current_mode
from ._distributed import arun_locked, run_locked
from ._encode_fast import encode_included, encode_values
from ._memo_semantic import SemanticMemo
from ._results import OneShot
from ._runtime import default_cache
from .backends.memory import MemoryBackend

if TYPE_CHECKING:
    from ._cache import Cache
    from ._keys import _Plan

# Module constants: reading an enum member through its class (`Mode.NORMAL`) runs the
# enum's descriptor machinery, ~1,200 instructions each, twice per hit.
_NORMAL = Mode.NORMAL
_BYPASS = Mode.BYPASS
_DISABLED = Mode.DISABLED


class _Hot:
    """What the hit path of a plain function called positionally needs, for the cache it
    last used: fixed for that cache, so a call reads it in one attribute; a call with
    another cache (a new default from `configure()`) takes the general path, which
    makes a new one. Never changed after it is made (threads read it without a lock)."""

    __slots__ = (
        "breaker",
        "cache",
        "flight",
        "header_sep",
        "included",
        "memory",
        "plan",
        "prefix",
        "seed",
        "tails",
    )

    def __init__(self, cache: Cache | None, plan: _Plan | None, prefix: str) -> None:
        self.cache = cache
        self.prefix = prefix
        # Per number of positional arguments the call may pass: the defaults after them.
        self.tails: dict[int, tuple[Any, ...]] = {}
        if cache is None or plan is None:
            return
        sig = plan.sig
        self.plan = plan
        for n in range(sig.fast_min, sig.npos + 1):
            self.tails[n] = tuple(sig.defaults[n : plan.width])
        self.included = None if plan.all_included else plan.included
        self.header_sep = plan.header_sep
        self.seed = cache.hash_seed
        self.flight = cache.flight
        self.breaker = cache.breaker
        # The embedded backend: a hit is one call that reads and compares the check
        # (the key material itself, see `Cache.check_is_material`).
        backend = cache.backend
        self.memory = backend if type(backend) is MemoryBackend else None


_COLD = _Hot(None, None, "")


class _Memo(SemanticMemo):
    """A decorated function's state (`MemoCore`, `SemanticMemo`) and its call paths."""

    hot = _COLD  # see _Hot

    # -- sync path -------------------------------------------------------------------------

    def call(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        cache = self.explicit_cache
        if cache is None:
            cache = default_cache()
        hot = self.hot
        if (
            hot.cache is cache
            and instance is None
            and not kwargs
            and current_mode() is _NORMAL
            and cache.enabled
            and (tail := hot.tails.get(len(args))) is not None
        ):
            # The hit path of a plain function called positionally, `keyed`'s fast path
            # inlined (one frame and one tuple less): the same key, check and read.
            values: Sequence[Any] = args + tail
            included = hot.included
            whole = (
                encode_values(values, hot.header_sep)
                if included is None
                else encode_included(values, included, hot.header_sep)
            )
            if whole is not None:
                key = hot.prefix + xxh3_128_hexdigest(whole, seed=hot.seed)
                memory = hot.memory
                if memory is not None and not hot.breaker.is_open:
                    value = memory.hit(key, whole)
                    if value is not MISSING:
                        self.counters.hits += 1
                        return value
                # A miss, or not in process: the full read (expiry, a failed check
                # counted as corrupt, the breaker and failures handled).
                seen = hot.flight.completed  # before that read: see _singleflight
                check = whole if memory is not None else cache.check_of(whole)
                counters = self.counters
                ahead = self.ahead  # the read goes with the KNN query (see AHEAD_AFTER)
                if not ahead:
                    value = cache.read(key, check, counters)
                    if value is not MISSING:
                        counters.hits += 1
                        return value
                return self._miss(
                    wrapped,
                    instance,
                    args,
                    kwargs,
                    cache,
                    _NORMAL,
                    key,
                    check,
                    hot.plan,
                    values,
                    seen,
                    ahead,
                )
        mode = current_mode()
        if mode is _DISABLED or not cache.enabled:
            return wrapped(*args, **kwargs)
        keyed = self.keyed(cache, args, kwargs, instance)
        if keyed is None:
            return wrapped(*args, **kwargs)  # raises the function's own TypeError
        if hot.cache is not cache and self.fast_plan is not None:
            self.hot = _Hot(cache, self.fast_plan, self._use(cache)[1])
        key, check, plan, values = keyed
        counters = self.counters
        seen = cache.flight.completed  # before the read: see _singleflight
        ahead = mode is _NORMAL and self.ahead
        if mode is _NORMAL and not ahead:
            value = cache.read(key, check, counters)
            if value is not MISSING:
                counters.hits += 1
                return value
        return self._miss(
            wrapped, instance, args, kwargs, cache, mode, key, check, plan, values, seen, ahead
        )

    def _miss(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        cache: Cache,
        mode: Mode,
        key: str,
        check: str | bytes,
        plan: _Plan,
        values: Sequence[Any],
        seen: int,
        ahead: bool = False,
    ) -> Any:
        """After a read that found nothing (or none made: refresh, bypass; or `ahead`: the
        read goes with the KNN query), semantic lookup, then single-flight compute and
        store."""
        counters = self.counters
        vector = None
        call = self.call_of(plan, values, instance)  # a miss: the entry needs the details
        sem = self.semantic_of(cache, call) if self.embed_key else None
        text = None if sem is None else sem.text
        found = None
        # Embedded once per call: a failed embedding (counted) is not tried again for the
        # store, which would wait the embedder's timeout a second time.
        tried = mode is _NORMAL and self.semantic and sem is not None and text is not None
        if tried and text is not None:
            vector = cache.embed(text.window, counters)
        if ahead:
            if sem is not None and vector is not None:
                value, found = self.read_ahead(cache, call, sem, vector, key, check)
            else:
                self.read_first()  # nothing to search with
                value = cache.read(key, check, counters)
            if value is not MISSING:
                self.read_first()
                counters.hits += 1
                return value
        elif mode is _NORMAL and self.semantic:
            self.exact_missed(cache)
            if sem is not None and vector is not None:
                found = self.lookup(cache, call, sem, vector)
        if found is not None and text is not None and self.verified(text.window, found):
            counters.semantic_hits += 1
            return found.value
        if mode is _BYPASS:
            counters.misses += 1
            return wrapped(*args, **kwargs)
        locked = self.lock and cache.supports_locks

        me = object()  # tells this caller's own one-shot result from another's

        def compute() -> Any:
            # The leader: if a flight finished since this caller's read, the result
            # may be stored by now (see _singleflight).
            if mode is _NORMAL and cache.flight.completed != seen:
                value = cache.read(key, check, counters)
                if value is not MISSING:
                    counters.hits += 1
                    return value
            counters.misses += 1
            result = wrapped(*args, **kwargs)
            if (kept := self.keepable(cache, result, counters, me)) is not result:
                return kept
            if self.unless is not None and self.unless(result):
                return result
            vec = vector
            if vec is None and text is not None and not tried:
                vec = cache.embed(text.window, counters)
            cache.write(
                self.entry(cache, call, key, check, result, vec, sem),
                self.ttl_for(cache),
                counters,
            )
            return result

        led = False

        def lead() -> Any:
            nonlocal led
            led = True
            return run_locked(cache, key, check, counters, compute) if locked else compute()

        out = cache.flight.do(key, lead)
        if type(out) is OneShot:  # never hand one caller's generator to another
            if out.owner is me:
                return out.value
            counters.misses += 1
            return wrapped(*args, **kwargs)
        if not led:
            # A caller that received the leader's result is a hit: misses count calls
            # of the function, so on a cold key set misses == distinct keys.
            counters.hits += 1
        return out

    # -- async path ------------------------------------------------------------------------

    async def acall(
        self,
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        cache = self.explicit_cache if self.explicit_cache is not None else default_cache()
        mode = current_mode()
        if mode is _DISABLED or not cache.enabled:
            return await wrapped(*args, **kwargs)
        keyed = self.keyed(cache, args, kwargs, instance)
        if keyed is None:
            return await wrapped(*args, **kwargs)
        key, check, plan, values = keyed
        counters = self.counters
        vector = None
        seen = cache.aflight.completed
        ahead = mode is _NORMAL and self.ahead  # see _miss
        if mode is _NORMAL and not ahead:
            value = await cache.aread(key, check, counters)
            if value is not MISSING:
                counters.hits += 1
                return value
        call = self.call_of(plan, values, instance)
        sem = self.semantic_of(cache, call) if self.embed_key else None
        text = None if sem is None else sem.text
        found = None
        tried = mode is _NORMAL and self.semantic and sem is not None and text is not None
        if tried and text is not None:  # once per call, as in _miss
            vector = await cache.aembed(text.window, counters)
        if ahead:
            if sem is not None and vector is not None:
                value, found = await self.aread_ahead(cache, call, sem, vector, key, check)
            else:
                self.read_first()
                value = await cache.aread(key, check, counters)
            if value is not MISSING:
                self.read_first()
                counters.hits += 1
                return value
        elif mode is _NORMAL and self.semantic:
            self.exact_missed(cache)
            if sem is not None and vector is not None:
                found = await self.alookup(cache, call, sem, vector)
        if found is not None and text is not None and await self.averified(text.window, found):
            counters.semantic_hits += 1
            return found.value
        if mode is _BYPASS:
            counters.misses += 1
            return await wrapped(*args, **kwargs)
        locked = self.lock and cache.supports_locks

        me = object()

        async def compute() -> Any:
            if mode is _NORMAL and cache.aflight.completed != seen:
                value = await cache.aread(key, check, counters)
                if value is not MISSING:
                    counters.hits += 1
                    return value
            counters.misses += 1
            result = await wrapped(*args, **kwargs)
            if (kept := self.keepable(cache, result, counters, me)) is not result:
                return kept
            if self.unless is not None and self.unless(result):
                return result
            vec = vector
            if vec is None and text is not None and not tried:
                vec = await cache.aembed(text.window, counters)
            await cache.awrite(
                self.entry(cache, call, key, check, result, vec, sem),
                self.ttl_for(cache),
                counters,
            )
            return result

        led = False

        async def lead() -> Any:
            nonlocal led
            led = True
            if locked:
                return await arun_locked(cache, key, check, counters, compute)
            return await compute()

        out = await cache.aflight.do(key, lead)
        if type(out) is OneShot:
            if out.owner is me:
                return out.value
            counters.misses += 1
            return await wrapped(*args, **kwargs)
        if not led:
            counters.hits += 1
        return out
