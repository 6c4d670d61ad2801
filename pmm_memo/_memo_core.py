"""The state of one decorated function and the work every call path shares: keys, the
entry key prefix and function tag for the cache in use, TTLs, and the attributes that are
not about semantic matching (cache_key, invalidate, cache_clear, cache_info).

`SemanticMemo` (`_memo_semantic`) adds matching, `_Memo` (`_memo`) the call paths.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from xxhash import xxh3_128_hexdigest

from . import _guards, _stats, _validate, _verify
from ._candidates import Matcher
from ._encode_fast import encode_included, encode_values
from ._json_tree import allow_types_from_annotation
from ._keys import BoundCall, KeyMaker, _Plan
from ._results import OneShot, one_shot_kind
from ._runtime import default_cache
from ._stats import CacheInfo, Counters
from ._textarg import TextArg, check_text_param

if TYPE_CHECKING:
    from ._cache import Cache

LLM_TENANTS = frozenset({"pmm_llm"})
logger = logging.getLogger("pmm_memo")


def _keyed_instance(instance: Any) -> bool:
    """Does `self`/`cls` take part in keys (it defines __cache_key__)?"""
    return getattr(type(instance), "__cache_key__", None) is not None


class MemoCore:
    """The per-function state; shared by all bindings of a method."""

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
        self.explicit_cache = _validate.cache_option(cache)
        self.keys = KeyMaker(
            func,
            version=None if version is None else str(version),
            ignore=ignore,
            text_arg=text_arg,
            user_arg=user_arg,
            custom_key=_validate.optional_callable("key", key),
        )
        self.fn_name = self.keys.func_name
        # The plan `keyed` binds by slicing: a plain function (no custom key, no
        # *args/**kwargs) called without keywords. Taken at the first call, with the
        # function identity (`_keys.KeyMaker`): asking for it here would fix the
        # identity at decoration, before a global bound in `__main__` exists.
        sig = self.keys.signature
        simple = sig.var_positional is None and sig.var_keyword is None
        self.fast_plan: _Plan | None = None
        self.fast_pending = simple and key is None
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
    ) -> tuple[str, str | bytes, _Plan, Sequence[Any]] | None:
        """(key, check, plan, bound values) of a call, or None if the arguments do not fit.

        The hit path: no BoundCall is built unless the key needs one (a custom key
        function, or an instance that defines __cache_key__); see `call_of` for misses.
        """
        plan = self.fast_plan
        if plan is None and self.fast_pending:  # the first call only
            plan = self.fast_plan = self.keys.plan(False)
            self.fast_pending = False
        if plan is not None and instance is None and not kwargs:
            # A plain function called positionally: bound by slicing, encoded in one
            # pass; the same bytes as the general path below (tests pin the two).
            n = len(args)
            sig = plan.sig
            if sig.fast_min <= n <= sig.npos:
                values = args if n == plan.width else (*args, *sig.defaults[n:])
                encoded = (
                    encode_values(values)
                    if plan.all_included
                    else encode_included(values, plan.included)
                )
                if encoded is not None:
                    whole = plan.header_sep + encoded
                    memo_cache, prefix, _ = self._prefix
                    if cache is not memo_cache:
                        prefix = self._use(cache)[1]
                    key = prefix + xxh3_128_hexdigest(whole, seed=cache.hash_seed)
                    check = whole if cache.check_is_material else cache.check_of(whole)
                    return key, check, plan, values
        plan = self.keys.plan(instance is not None)
        bound = plan.sig.bind(args, kwargs)
        if bound is None:
            return None
        material = None
        if plan.plain and (instance is None or not _keyed_instance(instance)):
            encoded = encode_included(bound, plan.included)
            if encoded is not None:
                head = (
                    plan.header_sep
                    if instance is None
                    else self.keys.method_head(True, instance)  # the class is in the key
                )
                material = head + encoded
        if material is None:  # the general path (it also names unencodable arguments)
            material = self.call_of(plan, bound, instance).material()
        key, check = self.key_from(cache, material)
        return key, check, plan, bound

    def call_of(self, plan: _Plan, values: Sequence[Any], instance: Any) -> BoundCall:
        call = BoundCall(self.keys, plan, list(values))
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

    def _warn_once(self, message: str, *args: Any) -> None:
        """One warning per decorated function (a misconfiguration, not an outage)."""
        if not self._warned:
            self._warned = True
            logger.warning(message, *args)

    def ttl_for(self, cache: Cache) -> int:
        return self.ttl_ms if self.ttl_ms is not None else cache.config.default_ttl * 1000

    def keepable(self, cache: Cache, result: Any, counters: Counters, owner: object) -> Any:
        """`result` itself when it is a value; a OneShot (not stored, counted) when it is
        a generator, iterator, coroutine or awaitable (see `_results`)."""
        kind = one_shot_kind(result)
        if kind is None:
            return result
        cache.uncacheable(self.fn_name, f"it returned {kind}, usable only once", counters)
        return OneShot(result, owner)

    # -- attributes ------------------------------------------------------------------------

    def cache_key(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return self.key_of(self.cache(), self.require_bind(args, kwargs, instance))[0]

    def invalidate(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        cache = self.cache()
        key, _ = self.key_of(cache, self.require_bind(args, kwargs, instance))
        return cache.delete(key)

    def cache_clear(self) -> int:
        cache = self.cache()
        removed = cache.clear(self.tenant, self.fn_of(cache))
        self.counters.reset()
        return removed

    def cache_info(self) -> CacheInfo:
        cache = self.cache()
        return self.counters.info(cache.count(self.tenant, self.fn_of(cache)))
