"""The decorated object: a wrapt FunctionWrapper carrying the cache attributes.

Built on wrapt so functions, methods, classmethods and staticmethods behave alike and
the wrapper looks like the function to `inspect`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wrapt

from ._memo import _Memo
from ._results import reject_generator_function
from ._stats import CacheInfo

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
