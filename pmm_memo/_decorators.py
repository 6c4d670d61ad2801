"""`@cached` and `@semantic_lookup`: one wrapper class, two entry points.

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

Built on wrapt's FunctionWrapper so functions, methods, classmethods and staticmethods
behave alike and the wrapper looks like the function to `inspect`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import wrapt
from xxhash import xxh3_128_hexdigest

from . import _guards, _stats, _validate, _verify
from ._candidates import Matcher
from ._codec import allow_types_from_annotation
from ._context import Mode, current_mode
from ._distributed import arun_locked, run_locked
from ._keys import (
    MISSING,
    BoundCall,
    KeyMaker,
    _Plan,
    encode_included,
)
from ._results import OneShot, one_shot_kind, reject_generator_function
from ._runtime import default_cache
from ._semantic import SemanticText, prepare
from ._stats import CacheInfo, Counters
from ._textarg import TextArg, check_text_param, replace_text
from ._typing import (
    CachedClassMethod,
    CacheDecorator,
    CachedFunction,
    CachedStaticMethod,
    P,
    R,
)
from .backends._base import Entry, Neighbour, VectorQuery

if TYPE_CHECKING:
    import numpy as np

    from ._cache import Cache

LLM_TENANTS = frozenset({"pmm_llm"})
# Chosen by measurement (benchmarks/quality.py, local MiniLM + the default guards): the
# highest threshold at which >= 70% of paraphrase controls of the hard-negatives table
# still hit, with 0 wrong hits there. See README "Choosing a threshold".
DEFAULT_THRESHOLD = 0.92
logger = logging.getLogger("pmm_memo")


class _Semantic(NamedTuple):
    text: SemanticText | None  # None: nothing to embed (no str text, or empty)
    scope: str  # digest of what must be equal for a semantic match


def _keyed_instance(instance: Any) -> bool:
    """Does `self`/`cls` take part in keys (it defines __cache_key__)?"""
    return getattr(type(instance), "__cache_key__", None) is not None


class _Memo:
    """The per-function state and the call paths; shared by all bindings of a method."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        tenant: str,
        ttl: float | None,
        embed_key: bool,
        threshold: float | None,
        k: int | None,
        ignore: tuple[str, ...],
        key: Callable[..., Any] | None,
        version: str | None,
        text_arg: TextArg,
        user_arg: str | None,
        unless: Callable[[Any], bool] | None,
        cache: Cache | None,
        lock: bool | None = None,
        guards: object = _guards.DEFAULT_GUARDS,
        verify: object = None,
    ) -> None:
        self.func = func
        self.tenant = _validate.tenant(tenant)
        self.ttl_ms = _validate.ttl(ttl)
        self.threshold = threshold
        self.semantic = threshold is not None
        # Cross-process single-flight: worth a lock round trip where a miss is expensive.
        self.lock = lock if lock is not None else (self.semantic or tenant in LLM_TENANTS)
        self.embed_key = embed_key or self.semantic
        self.k = k
        self.unless = _validate.optional_callable("unless", unless)
        self.explicit_cache = cache
        self.keys = KeyMaker(
            func,
            version=None if version is None else str(version),
            ignore=ignore,
            text_arg=text_arg,
            user_arg=user_arg,
            custom_key=_validate.optional_callable("key", key),
        )
        self.fn_name = self.keys.func_name
        self.counters = Counters()
        _stats.track(self.counters, self.tenant, self.fn_name)  # for metrics exporters
        self._warned = False
        if self.embed_key and self.keys.text_fn is None:
            check_text_param(
                func, self.keys.text_arg, "semantic_lookup" if self.semantic else "embed_key"
            )
        self._prefix: tuple[Cache | None, str, str] = (None, "", "")
        self.is_async = inspect.iscoroutinefunction(func)
        self.guards = _guards.parse(guards)
        self.matcher = Matcher(threshold, self.guards) if threshold is not None else None
        checked = _verify.check(verify, self.is_async)
        self.judge = None if checked is None else _verify.Judge(checked)
        allow_types_from_annotation(func)

    def cache(self) -> Cache:
        return self.explicit_cache if self.explicit_cache is not None else default_cache()

    # -- keys ------------------------------------------------------------------------------

    def keyed(
        self, cache: Cache, args: tuple[Any, ...], kwargs: dict[str, Any], instance: Any
    ) -> tuple[str, str | bytes, _Plan, list[Any]] | None:
        """(key, check, plan, bound values) of a call, or None if the arguments do not fit.

        The hit path: no BoundCall is built unless the key needs one (a custom key
        function, or an instance that defines __cache_key__); see `call_of` for misses.
        """
        plan = self.keys.plan(instance is not None)
        values = plan.sig.bind(args, kwargs)
        if values is None:
            return None
        material = None
        if plan.plain and (instance is None or not _keyed_instance(instance)):
            encoded = encode_included(values, plan.included)
            if encoded is not None:
                head = (
                    plan.header_sep
                    if instance is None
                    else self.keys.method_head(True, instance)  # the class is in the key
                )
                material = head + encoded
        if material is None:  # the general path (it also names unencodable arguments)
            material = self.call_of(plan, values, instance).material()
        key, check = self.key_from(cache, material)
        return key, check, plan, values

    def call_of(self, plan: _Plan, values: list[Any], instance: Any) -> BoundCall:
        call = BoundCall(self.keys, plan, values)
        return call if instance is None else call.with_instance(instance)

    def key_of(self, cache: Cache, call: BoundCall) -> tuple[str, str | bytes]:
        return self.key_from(cache, call.material())

    def key_from(self, cache: Cache, material: bytes) -> tuple[str, str | bytes]:
        # `cache:<tenant>:` for the cache last used; one tuple, so a thread that sees the
        # new cache also sees its prefix.
        memo_cache, prefix, _ = self._prefix
        if cache is not memo_cache:
            prefix = self._use(cache)[1]
        key = prefix + xxh3_128_hexdigest(material, seed=cache.hash_seed)  # = qhash()
        return key, (material if cache.check_is_material else cache.check_of(material))

    def _use(self, cache: Cache) -> tuple[Cache | None, str, str]:
        """(cache, `cache:<tenant>:`, fn tag) for the cache last used; one tuple, so a
        thread that sees the new cache also sees its prefix and tag (the fn tag depends
        on the cache's CACHE_HASH_SECRET)."""
        used = self._prefix
        if cache is not used[0]:
            used = (cache, f"{cache.key_prefix}{self.tenant}:", cache.digests.fn(self.keys.func_id))
            self._prefix = used
            cache.stats.register(self.tenant, self.counters)
        return used

    def fn_of(self, cache: Cache) -> str:
        """The `fn` tag of this function's entries in `cache`."""
        return self._use(cache)[2]

    def require_bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], instance: Any
    ) -> BoundCall:
        plan = self.keys.plan(instance is not None)
        values = plan.sig.bind(args, kwargs)
        if values is None:
            # Let the signature produce Python's own message.
            sig = inspect.signature(self.func)
            params = list(sig.parameters.values())
            if instance is not None:
                params = params[1:]
            sig.replace(parameters=params).bind(*args, **kwargs)
            raise TypeError(f"arguments do not fit {self.fn_name}")
        return self.call_of(plan, values, instance)

    # -- entries ---------------------------------------------------------------------------

    def user_of(self, call: BoundCall) -> str:
        user = call.user
        return "" if user is None else str(user)

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

    def _warn_once(self, message: str, *args: Any) -> None:
        """One warning per decorated function (a misconfiguration, not an outage)."""
        if not self._warned:
            self._warned = True
            logger.warning(message, *args)

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

    def ttl_for(self, cache: Cache) -> int:
        return self.ttl_ms if self.ttl_ms is not None else cache.config.default_ttl * 1000

    def query(self, cache: Cache, call: BoundCall, sem: _Semantic, vector: Any) -> VectorQuery:
        assert self.matcher is not None and sem.text is not None
        text = sem.text
        exact_only = self.matcher.exact_only
        return VectorQuery(
            tenant=self.tenant,
            vector=vector,
            k=self.k or cache.config.knn_k,
            fn=self.fn_of(cache),
            scope=sem.scope,
            user=self.user_of(call),
            embedder=cache.embedder_id.label,
            # threshold=1.0: only the same normalised text, found by its digest.
            text_h=text.digest if exact_only else None,
            # The matcher, guards and judge compare texts (not needed at 1.0).
            with_text=not exact_only,
        )

    def lookup(
        self, cache: Cache, call: BoundCall, sem: _Semantic, vector: Any, record: bool = True
    ) -> Neighbour | None:
        """The neighbour the matcher accepts (the judge, if any, is asked by the caller: it
        may be async), or None. `record=False`: no similarity or rejection is counted."""
        assert self.matcher is not None and sem.text is not None
        query = self.query(cache, call, sem, vector)
        found = cache.knn(query, self.counters)
        if found and record:
            self.counters.record_similarity(found[0].similarity)
        counters = self.counters if record else None
        for c in self.matcher.candidates(query, sem.text, found, counters):
            if c.compare is None or self.matcher.confirm(
                cache.embed_many(c.compare, self.counters)
            ):
                return c.neighbour
        return None

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
        assert self.matcher is not None and sem.text is not None
        query = self.query(cache, call, sem, vector)
        found = await cache.aknn(query, self.counters)
        if found and record:
            self.counters.record_similarity(found[0].similarity)
        counters = self.counters if record else None
        for c in self.matcher.candidates(query, sem.text, found, counters):
            if c.compare is None or self.matcher.confirm(
                await cache.aembed_many(c.compare, self.counters)
            ):
                return c.neighbour
        return None

    def keepable(self, cache: Cache, result: Any, counters: Counters, owner: object) -> Any:
        """`result` itself when it is a value; a OneShot (not stored, counted) when it is
        a generator, iterator, coroutine or awaitable (see `_results`)."""
        kind = one_shot_kind(result)
        if kind is None:
            return result
        cache.uncacheable(self.fn_name, f"it returned {kind}, usable only once", counters)
        return OneShot(result, owner)

    # -- sync path -------------------------------------------------------------------------

    def call(
        self,
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        cache = self.explicit_cache if self.explicit_cache is not None else default_cache()
        mode = current_mode()
        if mode is Mode.DISABLED or not cache.enabled:
            return wrapped(*args, **kwargs)
        keyed = self.keyed(cache, args, kwargs, instance)
        if keyed is None:
            return wrapped(*args, **kwargs)  # raises the function's own TypeError
        key, check, plan, values = keyed
        counters = self.counters
        vector = None
        seen = cache.flight.completed  # before the read: see _singleflight
        if mode is Mode.NORMAL:
            value = cache.read(key, check, counters)
            if value is not MISSING:
                counters.hits += 1
                return value
        call = self.call_of(plan, values, instance)  # a miss: the entry needs the details
        sem = self.semantic_of(cache, call) if self.embed_key else None
        text = None if sem is None else sem.text
        if mode is Mode.NORMAL and self.semantic and sem is not None and text is not None:
            vector = cache.embed(text.window, counters)
            if vector is not None:
                found = self.lookup(cache, call, sem, vector)
                if found is not None and self.verified(text.window, found):
                    counters.semantic_hits += 1
                    return found.value
        if mode is Mode.BYPASS:
            counters.misses += 1
            return wrapped(*args, **kwargs)
        locked = self.lock and cache.supports_locks

        me = object()  # tells this caller's own one-shot result from another's

        def compute() -> Any:
            # The leader: if a flight finished since this caller's read, the result
            # may be stored by now (see _singleflight).
            if mode is Mode.NORMAL and cache.flight.completed != seen:
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
            if vec is None and text is not None:
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
        if mode is Mode.DISABLED or not cache.enabled:
            return await wrapped(*args, **kwargs)
        keyed = self.keyed(cache, args, kwargs, instance)
        if keyed is None:
            return await wrapped(*args, **kwargs)
        key, check, plan, values = keyed
        counters = self.counters
        vector = None
        seen = cache.aflight.completed
        if mode is Mode.NORMAL:
            value = await cache.aread(key, check, counters)
            if value is not MISSING:
                counters.hits += 1
                return value
        call = self.call_of(plan, values, instance)
        sem = self.semantic_of(cache, call) if self.embed_key else None
        text = None if sem is None else sem.text
        if mode is Mode.NORMAL and self.semantic and sem is not None and text is not None:
            vector = await cache.aembed(text.window, counters)
            if vector is not None:
                found = await self.alookup(cache, call, sem, vector)
                if found is not None and await self.averified(text.window, found):
                    counters.semantic_hits += 1
                    return found.value
        if mode is Mode.BYPASS:
            counters.misses += 1
            return await wrapped(*args, **kwargs)
        locked = self.lock and cache.supports_locks

        me = object()

        async def compute() -> Any:
            if mode is Mode.NORMAL and cache.aflight.completed != seen:
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
            if vec is None and text is not None:
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

    # -- attributes ------------------------------------------------------------------------

    def cache_key(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return self.key_of(self.cache(), self.require_bind(args, kwargs, instance))[0]

    def invalidate(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        cache = self.cache()
        key, _ = self.key_of(cache, self.require_bind(args, kwargs, instance))
        return cache.delete(key)

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

    def cache_clear(self) -> int:
        cache = self.cache()
        removed = cache.clear(self.tenant, self.fn_of(cache))
        self.counters.reset()
        return removed

    def cache_info(self) -> CacheInfo:
        cache = self.cache()
        return self.counters.info(cache.count(self.tenant, self.fn_of(cache)))


if TYPE_CHECKING:
    _FunctionWrapper = wrapt.FunctionWrapper[Any, Any]
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper[Any, Any]
else:
    _FunctionWrapper = wrapt.FunctionWrapper
    _BoundFunctionWrapper = wrapt.BoundFunctionWrapper


class _CachedWrapper(_FunctionWrapper):
    """The decorated function: the original, plus cache_key/invalidate/cache_clear/..."""

    # No class-body annotations here: any would create `__annotations__` on the wrapper
    # class and hide the function's own, which wrapt proxies (typing.get_type_hints).
    def _memo(self) -> _Memo:
        memo: _Memo = getattr(self, "_self_memo")  # noqa: B009 - typed access, see above
        return memo

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The entry key this call would use (`cache:<tenant>:<32 hex>`)."""
        return self._memo().cache_key(None, args, kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Remove this call's entry; True when there was one."""
        return self._memo().invalidate(None, args, kwargs)

    def cache_clear(self) -> int:
        """Remove every entry of this function (in its tenant); returns how many."""
        return self._memo().cache_clear()

    def cache_info(self) -> CacheInfo:
        """Hits, misses, semantic hits, errors and (where known) the number of entries."""
        return self._memo().cache_info()

    def report_wrong_hit(self, *args: Any, **kwargs: Any) -> bool:
        """This call's semantic hit was wrong: the entry that answered it will need a
        higher similarity than this call's from now on, so the pair never hits again.
        True when an entry was marked; False when no semantic candidate answers it."""
        return self._memo().report_wrong_hit(None, args, kwargs)

    async def areport_wrong_hit(self, *args: Any, **kwargs: Any) -> bool:
        """Async twin of `report_wrong_hit`."""
        return await self._memo().areport_wrong_hit(None, args, kwargs)


class _BoundCachedWrapper(_BoundFunctionWrapper):
    """`obj.method` / `Cls.classmethod`: the same attributes, with the instance bound."""

    def _memo(self) -> _Memo:
        memo: _Memo = self._self_parent._memo()
        return memo

    def _resolve(self, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        """(instance the first parameter is bound to, remaining args), as wrapt calls do."""
        binding = self._self_binding
        instance = self._self_instance
        if binding == "staticmethod":
            return None, args
        if binding == "classmethod":
            owner = getattr(self, "_self_owner", None)
            return (owner if owner is not None else type(instance)), args
        if instance is None:  # `Cls.method(obj, ...)`: the instance is the first argument
            if not args:
                raise TypeError(
                    "a method accessed through its class needs the instance as first argument"
                )
            return args[0], args[1:]
        return instance, args

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        instance, rest = self._resolve(args)
        return self._memo().cache_key(instance, rest, kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        instance, rest = self._resolve(args)
        return self._memo().invalidate(instance, rest, kwargs)

    def cache_clear(self) -> int:
        return self._memo().cache_clear()

    def cache_info(self) -> CacheInfo:
        return self._memo().cache_info()

    def report_wrong_hit(self, *args: Any, **kwargs: Any) -> bool:
        instance, rest = self._resolve(args)
        return self._memo().report_wrong_hit(instance, rest, kwargs)

    async def areport_wrong_hit(self, *args: Any, **kwargs: Any) -> bool:
        instance, rest = self._resolve(args)
        return await self._memo().areport_wrong_hit(instance, rest, kwargs)


setattr(_CachedWrapper, "__bound_function_wrapper__", _BoundCachedWrapper)  # noqa: B010


def _wrap(func: Callable[..., Any], memo_options: dict[str, Any]) -> Any:
    target = func.__func__ if isinstance(func, classmethod | staticmethod) else func
    if not callable(target):
        raise TypeError(f"cannot cache {func!r}: not callable")
    reject_generator_function(target)
    memo = _Memo(target, **memo_options)
    wrapper_fn = memo.acall if memo.is_async else memo.call
    wrapper = _CachedWrapper(func, wrapper_fn)
    setattr(wrapper, "_self_memo", memo)  # noqa: B010 - wrapt keeps _self_* on the proxy
    return wrapper


@overload
def cached(func: classmethod[Any, P, R], /) -> CachedClassMethod[P, R]: ...
@overload
def cached(func: staticmethod[P, R], /) -> CachedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]
@overload
def cached(func: Callable[P, R], /) -> CachedFunction[P, R]: ...
@overload
def cached(
    *,
    tenant: str = ...,
    ttl: float | None = ...,
    embed_key: bool = ...,
    ignore: str | tuple[str, ...] | list[str] = ...,
    key: Callable[..., Any] | None = ...,
    version: str | int | None = ...,
    text_arg: TextArg = ...,
    user_arg: str | None = ...,
    unless: Callable[[Any], bool] | None = ...,
    cache: Cache | None = ...,
    lock: bool | None = ...,
) -> CacheDecorator: ...


def cached(
    func: Any = None,
    /,
    *,
    tenant: str = "default",
    ttl: float | None = None,
    embed_key: bool = False,
    ignore: str | tuple[str, ...] | list[str] = (),
    key: Callable[..., Any] | None = None,
    version: str | int | None = None,
    text_arg: TextArg = None,
    user_arg: str | None = None,
    unless: Callable[[Any], bool] | None = None,
    cache: Cache | None = None,
    lock: bool | None = None,
) -> Any:
    """Memoize a function by its arguments in `cache:<tenant>:<qhash>`.

    `ttl` in seconds (None: CACHE_DEFAULT_TTL); `embed_key=True` also stores an embedding
    of `text_arg` so the entry can answer semantic lookups and searches.
    """
    options = {
        "tenant": tenant,
        "ttl": ttl,
        "embed_key": bool(embed_key),
        "threshold": None,
        "k": None,
        "ignore": _validate.names("ignore", ignore),
        "key": key,
        "version": None if version is None else str(version),
        "text_arg": text_arg,
        "user_arg": user_arg,
        "unless": unless,
        "cache": cache,
        "lock": lock,
    }
    if func is not None:
        return _wrap(func, options)
    return lambda f: _wrap(f, options)


@overload
def semantic_lookup(func: classmethod[Any, P, R], /) -> CachedClassMethod[P, R]: ...
@overload
def semantic_lookup(func: staticmethod[P, R], /) -> CachedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]
@overload
def semantic_lookup(func: Callable[P, R], /) -> CachedFunction[P, R]: ...
@overload
def semantic_lookup(
    threshold: float = ...,
    *,
    tenant: str = ...,
    ttl: float | None = ...,
    k: int | None = ...,
    ignore: str | tuple[str, ...] | list[str] = ...,
    key: Callable[..., Any] | None = ...,
    version: str | int | None = ...,
    text_arg: TextArg = ...,
    user_arg: str | None = ...,
    unless: Callable[[Any], bool] | None = ...,
    cache: Cache | None = ...,
    lock: bool | None = ...,
    guards: str | tuple[str, ...] | list[str] = ...,
    verify: _verify.Verifier | None = ...,
) -> CacheDecorator: ...


def semantic_lookup(
    threshold: Any = DEFAULT_THRESHOLD,
    *,
    tenant: str = "default",
    ttl: float | None = None,
    k: int | None = None,
    ignore: str | tuple[str, ...] | list[str] = (),
    key: Callable[..., Any] | None = None,
    version: str | int | None = None,
    text_arg: TextArg = None,
    user_arg: str | None = None,
    unless: Callable[[Any], bool] | None = None,
    cache: Cache | None = None,
    lock: bool | None = None,
    guards: str | tuple[str, ...] | list[str] = _guards.DEFAULT_GUARDS,
    verify: _verify.Verifier | None = None,
) -> Any:
    """Like `cached`, and on an exact miss return the stored result of a near-duplicate
    call: same function, tenant, user and other arguments, with a `text_arg` whose
    embedding has cosine similarity >= `threshold`.

    Bare `@semantic_lookup` (no parentheses) uses the default threshold, 0.92.

    `guards`: text checks a candidate must pass (see pmm_memo._guards): "numbers"
    (default: equal numbers in order), "entities", "negation"; `()` for none.
    `verify`: an optional judge `(query_text, cached_text) -> bool` (sync, or async for an
    async function) asked about the best candidate; False or a failure is a miss.
    """
    if callable(threshold) or isinstance(threshold, classmethod | staticmethod):
        return semantic_lookup()(threshold)
    options = {
        "tenant": tenant,
        "ttl": ttl,
        "embed_key": True,
        "threshold": _validate.threshold(threshold),
        "k": None if k is None else _validate.positive_int("k", k),
        "ignore": _validate.names("ignore", ignore),
        "key": key,
        "version": None if version is None else str(version),
        "text_arg": text_arg,
        "user_arg": user_arg,
        "unless": unless,
        "cache": cache,
        "lock": lock,
        "guards": _guards.parse(guards).names,
        "verify": _verify.check(verify, None),  # callable? (async-ness: at decoration)
    }
    return lambda f: _wrap(f, options)
