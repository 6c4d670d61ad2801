"""`@cached` and `@semantic_lookup`: the two entry points, their options checked once at
decoration time.

What a call does: `_memo`; the state behind it: `_memo_core`, `_memo_semantic`; the
decorated object: `_wrapper`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from . import _guards, _validate, _verify
from ._textarg import TextArg
from ._typing import (
    CachedClassMethod,
    CacheDecorator,
    CachedFunction,
    CachedStaticMethod,
    P,
    R,
)
from ._wrapper import _wrap

if TYPE_CHECKING:
    from ._cache import Cache

# Chosen by measurement (benchmarks/quality.py, local MiniLM + the default guards): the
# highest threshold on a 0.005 grid at which >= 70% of the paraphrase controls of the
# hard-negatives table still hit, with 0 wrong hits there (0.94 keeps 68%). See README
# "Choosing a threshold".
DEFAULT_THRESHOLD = 0.935


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

    Bare `@semantic_lookup` (no parentheses) uses the default threshold, 0.935.

    `guards`: text checks a candidate must pass (see pmm_memo._guards): "numbers",
    "entities", "negation", "units", "opposites", "roles" (default: all); `()` for none.
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
