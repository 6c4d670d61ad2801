"""What decorated functions look like to type checkers (mypy, pyright).

Runtime objects are function proxies (`_wrapper._CachedWrapper`); these protocols only
describe them, so user code keeps the function's signature and return type:

- `CachedFunction[P, R]`: a decorated function. Read through an instance (a method),
  `__get__` drops the first parameter (`self`), as Python's own binding does, so
  `Repo().get("k")`, `Repo().get.cache_key("k")` and a wrong argument type are all
  checked.
- Both checkers erase `@classmethod`/`@staticmethod` under another decorator to a flag
  on the function, so they hand `cached` a plain function and `__get__` reads the
  binding off the first parameter's type: `type[S]` binds the class (a classmethod), an
  `S` the instance fits binds the instance (a method), anything else stays (a
  staticmethod). pyright checks these self-typed overloads exactly. mypy does not check
  a self type against the first parameter (it takes the first overload whose
  instance/owner fit): functions, methods read through an instance and classmethods are
  typed right, but a staticmethod's first parameter, and a method read through its class
  (`Repo.get(repo, "k")`), are bound as if by a classmethod. `pmm_memo.mypy_plugin`
  fixes both: it gives mypy `CachedStaticMethod` / `CachedMethod` (below) for those.
  `tests/typing/user_code.py` pins both checkers' behaviour, mypy with and without it.
- `CachedClassMethod` / `CachedStaticMethod`: what `cached(classmethod(f))` returns
  when a checker does see the descriptor object (an explicit call); `CachedMethod` and
  `CachedStaticMethod` are also what the mypy plugin gives methods and staticmethods.
- `CacheDecorator`: what `cached(...)` / `semantic_lookup(...)` return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from ._stats import CacheInfo

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")
P2 = ParamSpec("P2")
R2 = TypeVar("R2")


class _CacheAttributes(Protocol[P, R_co]):
    """What every callable decorated object has: the call and the cache attributes."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str: ...
    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...
    def cache_clear(self) -> int: ...
    def cache_info(self) -> CacheInfo: ...
    def report_wrong_hit(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...
    async def areport_wrong_hit(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...


class CachedFunction(_CacheAttributes[P, R], Protocol[P, R]):
    """A decorated function (or method): the original plus the cache attributes."""

    __wrapped__: Callable[P, R]

    # Binding as Python binds a function. Type checkers see `@cached` above
    # `@classmethod`/`@staticmethod` as a plain function (both erase those decorators to a
    # flag on the function), so the binding is read off the first parameter: `type[S]`
    # binds the owner class (a classmethod), `S` binds the instance (a method), and a
    # first parameter the instance does not fit stays (a staticmethod).
    @overload
    def __get__(
        self: CachedFunction[Concatenate[type[S], P2], R2],
        instance: S | None,
        owner: type[S],
        /,
    ) -> CachedFunction[P2, R2]: ...
    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> CachedFunction[P, R]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R2],
        instance: S,
        owner: type[Any] | None = None,
        /,
    ) -> CachedFunction[P2, R2]: ...
    @overload
    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> CachedFunction[P, R]: ...


class CachedMethod(_CacheAttributes[P, R], Protocol[P, R]):
    """A decorated method as `pmm_memo.mypy_plugin` types it for mypy.

    mypy does not check the self-typed `CachedFunction.__get__` overloads against the first
    parameter, so the plugin hands it this instead when the decorated function is a plain
    method: read through the class nothing is bound (`Repo.get(repo, "k")`), read through
    an instance the first parameter is.
    """

    __wrapped__: Callable[P, R]

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> CachedFunction[P, R]: ...
    @overload
    def __get__(
        self: CachedMethod[Concatenate[S, P2], R2],
        instance: S,
        owner: type[Any] | None = None,
        /,
    ) -> CachedFunction[P2, R2]: ...


class CachedClassMethod(Protocol[P, R]):
    """`@cached` above `@classmethod`: read through the class or an instance, `cls` is bound."""

    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> CachedFunction[P, R]: ...


class CachedStaticMethod(_CacheAttributes[P, R], Protocol[P, R]):
    """`@cached` above `@staticmethod`: nothing is bound, every parameter stays."""

    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> CachedFunction[P, R]: ...


class CacheDecorator(Protocol):
    """`cached(tenant=...)`: applied to a function, classmethod or staticmethod."""

    @overload
    def __call__(self, func: classmethod[Any, P, R], /) -> CachedClassMethod[P, R]: ...
    @overload
    # A staticmethod is callable too; this more specific overload wins (checked first).
    def __call__(self, func: staticmethod[P, R], /) -> CachedStaticMethod[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, func: Callable[P, R], /) -> CachedFunction[P, R]: ...
