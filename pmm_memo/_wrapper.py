"""The decorated object: a small function proxy carrying the cache attributes.

Functions, methods, classmethods and staticmethods behave alike (the binding rules of
wrapt's `FunctionWrapper`, which this replaced on the hit path: its C `__call__` cost
~1 µs per call, more than the rest of an in-process hit), and the wrapper looks like the
function to `inspect` and `typing`: `__wrapped__`, `__name__`, `__qualname__`,
`__module__`, `__doc__` are set, every other attribute (`__code__`, `__defaults__`,
`__annotations__`, ...) is read from the function, and `__class__` is the function's, so
`inspect.iscoroutinefunction`, `inspect.signature` and `typing.get_type_hints` answer as
for the function itself.

Reading an attribute through an instance (`obj.method`, `Cls.classmethod`) returns a
`_BoundCachedWrapper` that knows the instance (or class) the call goes through: it is
part of a method's key (see `_keys`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ._memo import _Memo
from ._results import reject_generator_function
from ._stats import CacheInfo

_ABSENT = object()
_COPIED = ("__module__", "__name__", "__qualname__", "__doc__")
# What `_identity` calls these proxies when a decorated function is captured by another
# one; fixed, so moving the classes never re-keys the functions that capture them.
_LABELS = ("pmm_memo._decorators._CachedWrapper", "pmm_memo._decorators._BoundCachedWrapper")


def _binding(wrapped: Any) -> str:
    """How the wrapped object binds (wrapt's classification, kept so keys stay equal)."""
    if inspect.isbuiltin(wrapped):
        return "builtin"
    if inspect.isfunction(wrapped):
        return "function"
    if inspect.isclass(wrapped):
        return "class"
    if isinstance(wrapped, classmethod):
        return "classmethod"
    if isinstance(wrapped, staticmethod):
        return "staticmethod"
    if hasattr(wrapped, "__self__"):
        if inspect.isclass(wrapped.__self__):
            return "classmethod"
        return "instancemethod" if inspect.ismethod(wrapped) else "callable"
    return "callable"


# Bindings whose call passes what the wrapped object is bound to (a bound method's
# `__self__`) as the instance; the others call with none.
_SELF_BINDINGS = frozenset({"function", "instancemethod", "classmethod", "callable"})


class _CacheAttributes:
    """What both proxies carry: the cache attributes, and the function's look. A call's
    instance comes from `_resolve` (none for the unbound wrapper)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self.__dict__["__wrapped__"])

    def __repr__(self) -> str:
        return f"<pmm_memo cached {self.__dict__['__wrapped__']!r}>"

    def _memo(self) -> _Memo:
        memo: _Memo = self.__dict__["_pmm_memo"]
        return memo

    def _resolve(self, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        """(instance the first parameter is bound to, remaining args), as calls do."""
        return None, args

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The entry key this call would use (`cache:<tenant>:<32 hex>`)."""
        instance, rest = self._resolve(args)
        return self._memo().cache_key(instance, rest, kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Remove this call's entry; True when there was one."""
        instance, rest = self._resolve(args)
        return self._memo().invalidate(instance, rest, kwargs)

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
        instance, rest = self._resolve(args)
        return self._memo().report_wrong_hit(instance, rest, kwargs)

    async def areport_wrong_hit(self, *args: Any, **kwargs: Any) -> bool:
        """Async twin of `report_wrong_hit`."""
        instance, rest = self._resolve(args)
        return await self._memo().areport_wrong_hit(instance, rest, kwargs)


class _CachedWrapper(_CacheAttributes):
    """The decorated function: the original, plus cache_key/invalidate/cache_clear/..."""

    identity_label = _LABELS[0]

    def __init__(self, wrapped: Any, memo: _Memo) -> None:
        # Instance attributes only: a class-level annotation or attribute named like a
        # function attribute would hide the function's own (typing.get_type_hints).
        d = self.__dict__
        for name in _COPIED:
            value = getattr(wrapped, name, _ABSENT)
            if value is not _ABSENT:
                d[name] = value
        d["__wrapped__"] = wrapped
        d["_pmm_memo"] = memo
        d["_pmm_call"] = memo.acall if memo.is_async else memo.call
        d["_pmm_binding"] = binding = _binding(wrapped)
        # Fixed for the wrapper's life (a bound method's __self__ never changes): the
        # call path reads one attribute instead of probing the function.
        d["_pmm_self"] = getattr(wrapped, "__self__", None) if binding in _SELF_BINDINGS else None
        # What a call passes, in one attribute: with `__getattr__` defined, every attribute
        # read goes through the slow hook (~300 instructions each, three per call).
        d["_pmm_go"] = (d["_pmm_call"], wrapped, d["_pmm_self"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call, wrapped, instance = self._pmm_go
        return call(wrapped, instance, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if self._pmm_binding in ("class", "builtin"):
            return self
        binder = getattr(self.__wrapped__, "__get__", None)
        if binder is None:  # a callable object that does not bind: stays as it is
            return self
        return _BoundCachedWrapper(binder(instance, owner), instance, self, owner)

    def __set_name__(self, owner: type, name: str) -> None:
        set_name = getattr(self.__wrapped__, "__set_name__", None)
        if set_name is not None:
            set_name(owner, name)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what the wrapper itself lacks; the guard keeps a half-built
        # object (copy, pickle probing) from recursing.
        if name.startswith("_pmm_") or name == "__wrapped__":
            raise AttributeError(name)
        return getattr(self.__dict__["__wrapped__"], name)


class _BoundCachedWrapper(_CacheAttributes):
    """`obj.method` / `Cls.classmethod`: the same attributes, with the instance bound."""

    identity_label = _LABELS[1]

    def __init__(
        self, descriptor: Any, instance: Any, parent: _CachedWrapper, owner: type | None
    ) -> None:
        d = self.__dict__
        for name in ("__module__", "__doc__"):  # class attributes: they must be shadowed
            value = getattr(descriptor, name, _ABSENT)
            if value is not _ABSENT:
                d[name] = value
        d["__wrapped__"] = descriptor
        d["_pmm_instance"] = instance
        d["_pmm_parent"] = parent
        d["_pmm_owner"] = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent = self._pmm_parent
        if parent._pmm_binding in ("function", "callable"):
            instance = self._pmm_instance
            if instance is None and args:
                # `Cls.method(obj, ...)`: the instance is the first argument.
                first, owner = args[0], self._pmm_owner
                if owner is not None and isinstance(first, owner):
                    bound = functools.partial(self.__wrapped__, first)
                    return parent._pmm_call(bound, first, args[1:], kwargs)
            return parent._pmm_call(self.__wrapped__, instance, args, kwargs)
        # classmethod: the class the call goes through; bound method: its object;
        # staticmethod: none.
        instance = getattr(self.__wrapped__, "__self__", None)
        return parent._pmm_call(self.__wrapped__, instance, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        binding = self._pmm_parent._pmm_binding
        if self._pmm_instance is None and binding in ("function", "instancemethod", "callable"):
            return self._pmm_parent.__get__(instance, owner)
        return self

    def __eq__(self, other: object) -> bool:
        # As bound methods: `obj.m == obj.m` (and `callbacks.remove(obj.m)`) holds.
        if type(other) is not _BoundCachedWrapper:
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__
        return bool(
            mine["_pmm_parent"] is theirs["_pmm_parent"]
            and mine["__wrapped__"] == theirs["__wrapped__"]
        )

    def __hash__(self) -> int:
        return hash(self.__dict__["__wrapped__"])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_pmm_") or name == "__wrapped__":
            raise AttributeError(name)
        d = self.__dict__
        try:
            return getattr(d["_pmm_parent"], name)
        except AttributeError:
            return getattr(d["__wrapped__"], name)

    def _memo(self) -> _Memo:
        memo: _Memo = self._pmm_parent._memo()
        return memo

    def _resolve(self, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        """(instance the first parameter is bound to, remaining args), as calls do."""
        binding = self._pmm_parent._pmm_binding
        instance = self._pmm_instance
        if binding == "staticmethod":
            return None, args
        if binding == "classmethod":
            owner = self._pmm_owner
            return (owner if owner is not None else type(instance)), args
        if instance is None:  # `Cls.method(obj, ...)`: the instance is the first argument
            if not args:
                raise TypeError(
                    "a method accessed through its class needs the instance as first argument"
                )
            return args[0], args[1:]
        return instance, args


def _wrap(func: Callable[..., Any], memo_options: dict[str, Any]) -> Any:
    target = func.__func__ if isinstance(func, classmethod | staticmethod) else func
    if not callable(target):
        raise TypeError(f"cannot cache {func!r}: not callable")
    reject_generator_function(target)
    return _CachedWrapper(func, _Memo(target, **memo_options))
