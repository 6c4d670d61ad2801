"""The decorated object (`_wrapper`): it looks like the function, binds like wrapt's
FunctionWrapper did (functions, methods, classmethods, staticmethods, bound methods,
callable objects), and keeps the identity label keys were made with."""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
import typing

from pmm_memo import Cache, cached
from pmm_memo._identity import _Walk


def test_looks_like_the_function(memory_cache: Cache) -> None:
    def plain(prompt: str, n: int = 1) -> str:
        """Doc."""
        return prompt * n

    async def fetch(prompt: str) -> str:
        return prompt

    wrapped = cached(tenant="t", cache=memory_cache)(plain)
    afetch = cached(tenant="t", cache=memory_cache)(fetch)
    assert isinstance(wrapped, types.FunctionType) and inspect.isfunction(wrapped)
    assert (wrapped.__name__, wrapped.__qualname__, wrapped.__doc__) == (
        "plain",
        plain.__qualname__,
        "Doc.",
    )
    assert wrapped.__module__ == __name__ and wrapped.__wrapped__ is plain
    assert wrapped.__code__ is plain.__code__ and wrapped.__defaults__ == (1,)
    assert typing.get_type_hints(wrapped) == {"prompt": str, "n": int, "return": str}
    assert inspect.signature(wrapped) == inspect.signature(plain)
    assert not inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(afetch)
    assert asyncio.run(afetch("a")) == "a"
    assert "plain" in repr(wrapped)


def test_binds_like_functions_do(memory_cache: Cache) -> None:
    seen: list[tuple[str, object]] = []

    class Repo:
        @cached(tenant="t", cache=memory_cache)
        def load(self, ident: int) -> str:
            seen.append(("load", self))
            return f"row{ident}"

        @cached(tenant="t", cache=memory_cache)
        @classmethod
        def make(cls, n: int) -> str:
            seen.append(("make", cls))
            return cls.__name__ + str(n)

        @cached(tenant="t", cache=memory_cache)
        @staticmethod
        def pure(n: int) -> int:
            seen.append(("pure", n))
            return n

    class Sub(Repo):
        pass

    repo = Repo()
    assert repo.load(1) == Repo.load(repo, 1) == "row1"
    assert repo.load.__self__ is repo and isinstance(repo.load, types.MethodType)
    assert inspect.signature(repo.load) == inspect.signature(Repo().load.__wrapped__)
    assert Repo.make(2) == repo.make(2) == "Repo2"
    assert Sub.make(2) == "Sub2"  # the class the call goes through
    assert Repo.pure(3) == repo.pure(3) == 3
    assert seen == [("load", repo), ("make", Repo), ("make", Sub), ("pure", 3)]
    assert repo.load.cache_key(1) == Repo.load.cache_key(repo, 1)
    assert Repo.make.cache_key(2) != Sub.make.cache_key(2)
    assert repo.load.cache_info().hits == 1 and Repo.make.cache_info().hits == 1


def test_bound_methods_partials_and_callable_objects(memory_cache: Cache) -> None:
    computed: list[object] = []

    class Model:
        def answer(self, x: int, y: int = 2) -> int:
            computed.append(x)
            return x + y

        def __call__(self, x: int) -> int:
            computed.append(("call", x))
            return x

    model = Model()
    for func in (model.answer, functools.partial(Model.answer, model), model):
        memo = cached(tenant="t", cache=memory_cache)(func)
        assert memo(5) == memo(5)
        assert memo.cache_info().hits == 1, func
    assert computed == [5, 5, ("call", 5)]


def test_a_captured_decorated_function_keeps_its_identity_label(memory_cache: Cache) -> None:
    """Another function's key digests what it calls; the wrapper's label is fixed, so
    moving or rewriting the wrapper classes never re-keys those functions."""

    @cached(tenant="t", cache=memory_cache)
    def inner(x: int) -> int:
        return x

    class Holder:
        @cached(tenant="t", cache=memory_cache)
        def method(self, x: int) -> int:
            return x

    walk = _Walk(False, __name__)
    assert walk.describe(inner).startswith("proxy:pmm_memo._decorators._CachedWrapper<")
    bound = walk.describe(Holder().method)  # a bound method: described as one
    assert bound.startswith(f"{__name__}.{Holder.method.__qualname__}#") and "+self:" in bound


def test_bound_methods_compare_and_hash_like_bound_methods() -> None:
    class Repo:
        @cached(tenant="t_bound_eq")
        def get(self, key: str) -> str:
            return key

        @classmethod
        @cached(tenant="t_bound_eq")
        def make(cls, key: str) -> str:
            return key

    one, two = Repo(), Repo()
    assert one.get == one.get and hash(one.get) == hash(one.get)
    assert one.get != two.get
    assert len({one.get, one.get, two.get}) == 2
    callbacks = [one.get]
    callbacks.remove(one.get)
    assert Repo.make == Repo.make and len({Repo.make, Repo.make}) == 1
    assert one.get != Repo.make
